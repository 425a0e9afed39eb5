#!/usr/bin/env node
// The `greenroom` command: loads the TypeScript entry point through ts-node.
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

register('ts-node/esm/transpile-only', pathToFileURL(new URL('../', import.meta.url).pathname));
await import('../src/main.ts');
