// Empties dist/ before a build, so a source file moved or removed leaves no stale output to be packed.
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

await rm(fileURLToPath(new URL('../dist/', import.meta.url)), { recursive: true, force: true });
