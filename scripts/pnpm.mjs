// Runs a workspace script through a pinned pnpm, installing dependencies first when needed,
// so `npm test` works on a machine that has only Node and npm.
import { ensureInstalled, pnpm, STOPPED } from './workspace.mjs';

try {
  await ensureInstalled();
  await pnpm(process.argv.slice(2));
} catch (err) {
  if (err !== STOPPED) throw err;
  process.exit(130);
}
