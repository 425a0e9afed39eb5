// Lets Node run the bench's TypeScript directly, from any working directory (type checking is `tsc --noEmit`).
import { register } from 'node:module';

register('ts-node/esm/transpile-only', import.meta.url);
