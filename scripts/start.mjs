// `npm start`: installs if needed, builds what is out of date, then runs the built server in this very process.
// npm runs it as its only child with no shell in between (`exec`), and passes SIGTERM and SIGINT on to it, so a
// signal to the PID of `npm start` stops the server cleanly (exit 0); during the install or build it stops that step
// and exits. `--dev` runs the TypeScript sources instead (ts-node; `npm run dev`).
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { buildOutOfDate, ensureInstalled, root, STOPPED } from './workspace.mjs';

const dev = process.argv.includes('--dev');
try {
  await ensureInstalled();
  await buildOutOfDate();
} catch (err) {
  // Stopped while installing or building: that step has ended, and no server was started.
  if (err !== STOPPED) throw err;
  process.exit(0);
}
// The server's command line: `greenroom serve` (GREENROOM_* variables configure it).
process.argv = [process.argv[0], 'greenroom', 'serve'];
if (dev) {
  await import(pathToFileURL(join(root, 'packages/server/register.mjs')).href);
  await import(pathToFileURL(join(root, 'packages/server/src/cli/main.ts')).href);
} else {
  await import(pathToFileURL(join(root, 'packages/server/dist/cli/main.js')).href);
}
