// Runs a workspace script through a pinned pnpm, installing dependencies first when needed,
// so `npm test` works on a machine that has only Node and npm.
import { ensureInstalled, pnpm } from './workspace.mjs';

ensureInstalled();
pnpm(process.argv.slice(2));
