import { createDefaultEsmPreset, type JestConfigWithTsJest } from 'ts-jest';

// One jest run over every package; TypeScript runs unbuilt as ESM (type checking is `tsc --noEmit`).
const config: JestConfigWithTsJest = {
  ...createDefaultEsmPreset({ tsconfig: '<rootDir>/tsconfig.json' }),
  testEnvironment: 'node',
  roots: ['<rootDir>/packages'],
  testMatch: ['**/test/**/*.test.ts'],
  moduleNameMapper: {
    '^@greenroom/protocol$': '<rootDir>/packages/protocol/src/index.ts',
    '^@greenroom/client$': '<rootDir>/packages/client/src/index.ts',
    '^@greenroom/server$': '<rootDir>/packages/server/src/index.ts',
    '^@greenroom/server/testing$': '<rootDir>/packages/server/src/testing/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 60_000,
  maxWorkers: 2,
};

export default config;
