export * from './auth.js';
export * from './codes.js';
export * from './frames.js';
export * from './parse.js';
export * from './views.js';
export * from './actor-types.js';
