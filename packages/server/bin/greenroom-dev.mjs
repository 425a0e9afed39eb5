#!/usr/bin/env node
// `greenroom` from the TypeScript sources, for development and tests (`npm run dev`); the published command is
// bin/greenroom.mjs, which runs the build.
import '../register.mjs';

await import('../src/cli/main.ts');
