// `npm start`: installs if needed, builds what is out of date, then runs the built server in this very process, so
// the PID of `npm start` is the server's: SIGTERM or SIGINT to it stops the server cleanly (exit 0). `--dev` runs
// the TypeScript sources instead (ts-node; `npm run dev`).
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { buildOutOfDate, ensureInstalled, root } from './workspace.mjs';

const dev = process.argv.includes('--dev');
ensureInstalled();
buildOutOfDate();
// The server's command line: `greenroom serve` (GREENROOM_* variables configure it).
process.argv = [process.argv[0], 'greenroom', 'serve'];
if (dev) {
  await import(pathToFileURL(join(root, 'packages/server/register.mjs')).href);
  await import(pathToFileURL(join(root, 'packages/server/src/main.ts')).href);
} else {
  await import(pathToFileURL(join(root, 'packages/server/dist/main.js')).href);
}
