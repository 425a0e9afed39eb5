// Lets Node run the bench's TypeScript directly, from any working directory (type checking is `tsc --noEmit`), with
// the workspace packages resolved to their sources (their `development` export condition).
import { register } from 'node:module';

register('ts-node/esm/transpile-only', import.meta.url);
register('../../scripts/dev-conditions.mjs', import.meta.url);
