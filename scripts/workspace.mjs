// What `npm start`, `npm test` and `npm run dev` share: a pinned pnpm (so a machine with only Node and npm works),
// an install when the lockfile or a package manifest changed since the last one, and a build of what is out of date.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
const PNPM = 'pnpm@10.34.9';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** Rejected with by a step that was stopped by SIGINT or SIGTERM (the step's processes have ended by then). */
export const STOPPED = new Error('stopped by a signal');

/**
 * Runs a command from the top of the workspace; exits with its status if it fails. A SIGINT or SIGTERM meanwhile is
 * passed on to it, and once it has ended the step rejects with STOPPED: nothing it started is left running.
 */
function run(command, args, { failure } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit' });
    let stopped = false;
    const forward = (signal) => {
      stopped = true;
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const done = () => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.once('error', (err) => (done(), reject(err)));
    child.once('exit', (code) => {
      done();
      if (stopped) reject(STOPPED);
      else if (code !== 0) {
        if (failure) console.error(failure);
        process.exit(code ?? 1);
      } else resolve();
    });
  });
}

/** Runs the pinned pnpm; `failure` is printed (to stderr) before exiting when it fails. */
export function pnpm(args, options) {
  return run(npx, ['--yes', PNPM, ...args], options);
}

/** Newest modification time (ms) of a file, or of any file below a directory (node_modules and dist skipped). */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let latest = st.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    latest = Math.max(latest, newest(join(path, entry)));
  }
  return latest;
}

/** Whether this is a CI run (`CI` set, as CI services and .ci/run set it): there the lockfile is only ever read. */
const ci = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

function readLockfile() {
  try {
    return readFileSync(join(root, 'pnpm-lock.yaml'), 'utf8');
  } catch {
    return '';
  }
}

/**
 * Installs unless node_modules is newer than the lockfile, every package manifest and the packages folder (a package
 * added or removed). In CI the lockfile must already match the manifests (a frozen install, which fails loudly when
 * it does not); elsewhere a plain install brings it up to date, so a package added under packages/ just works — and
 * the updated pnpm-lock.yaml is to be committed with it.
 */
export async function ensureInstalled() {
  const stamp = join(root, 'node_modules', '.modules.yaml');
  const installed = newest(stamp);
  const packagesDir = join(root, 'packages');
  const packages = readdirSync(packagesDir);
  const manifests = [join(root, 'pnpm-lock.yaml'), join(root, 'pnpm-workspace.yaml'), join(root, 'package.json'), ...packages.map((p) => join(packagesDir, p, 'package.json'))];
  const changed = Math.max(statSync(packagesDir).mtimeMs, ...manifests.map(newest));
  if (installed > 0 && changed < installed) return;
  if (ci) {
    await pnpm(['install', '--frozen-lockfile', '--reporter=append-only'], {
      failure:
        'greenroom: the frozen install failed. If pnpm says the lockfile is out of date (ERR_PNPM_OUTDATED_LOCKFILE), a package.json ' +
        'changed without pnpm-lock.yaml: run `pnpm install` (or `npm test`, which runs it outside CI) and commit pnpm-lock.yaml.',
    });
  } else {
    const before = readLockfile();
    await pnpm(['install', '--reporter=append-only']);
    if (readLockfile() !== before) console.log('greenroom: pnpm-lock.yaml was updated to match the package manifests: commit it with them.');
  }
  // The install is the newest thing now, whatever order pnpm wrote its files in.
  const now = new Date();
  utimesSync(stamp, now, now);
}

/**
 * The published packages and the dashboard, in build order, each with what its build reads. A package is rebuilt
 * when any of those is newer than its build stamp.
 */
const BUILDS = [
  { name: '@greenroom/protocol', dir: 'packages/protocol', inputs: [] },
  { name: '@greenroom/client', dir: 'packages/client', inputs: ['packages/protocol/dist/.build-stamp'] },
  { name: '@greenroom/dashboard', dir: 'packages/dashboard', inputs: ['packages/client/src', 'packages/protocol/src'] },
  { name: '@greenroom/server', dir: 'packages/server', inputs: ['packages/protocol/dist/.build-stamp', 'packages/dashboard/dist/.build-stamp', 'packages/server/scripts/copy-dashboard.mjs', 'packages/server/scripts/clean-dist.mjs'] },
];

/** Builds what is out of date (or everything, with `force`); a build that fails leaves its package out of date. */
export async function buildOutOfDate({ force = false } = {}) {
  for (const b of BUILDS) {
    const stampFile = join(root, b.dir, 'dist', '.build-stamp');
    const stamp = newest(stampFile);
    const inputs = [join(root, b.dir, 'src'), join(root, b.dir, 'package.json'), join(root, b.dir, 'tsconfig.build.json'), join(root, b.dir, 'build.mjs'), ...b.inputs.map((i) => join(root, i))];
    if (!force && stamp > 0 && inputs.every((i) => newest(i) <= stamp)) continue;
    await pnpm(['--filter', b.name, 'run', 'build']);
    writeFileSync(stampFile, `${new Date().toISOString()}\n`);
  }
}
