// Runs a workspace script through a pinned pnpm, installing dependencies first,
// so `npm start` and `npm test` work on a machine that has only Node and npm.
import { spawnSync } from 'node:child_process';

const PNPM = 'pnpm@10.34.9';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function pnpm(args) {
  const r = spawnSync(npx, ['--yes', PNPM, ...args], { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

pnpm(['install', '--frozen-lockfile', '--reporter=append-only']);
pnpm(process.argv.slice(2));
