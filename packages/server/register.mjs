// Lets Node run the TypeScript sources directly (type checking is `tsc --noEmit`, in CI).
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

register('ts-node/esm/transpile-only', pathToFileURL('./'));
