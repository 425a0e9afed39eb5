// Test artifacts (jest's JSON report, screenshots) go to .artifacts/, which git ignores.
import { mkdirSync } from 'node:fs';

mkdirSync(new URL('../.artifacts/', import.meta.url), { recursive: true });
