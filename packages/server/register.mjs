// Lets Node run the TypeScript sources directly (development and tests; type checking is `tsc --noEmit`): ts-node,
// and the `development` export condition so @greenroom/* packages resolve to their sources, not their builds.
import { register } from 'node:module';

register('ts-node/esm/transpile-only', import.meta.url);
register('../../scripts/dev-conditions.mjs', import.meta.url);
