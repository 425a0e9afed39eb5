// Browser tests drive Debian's chromium with playwright-core. On a fresh machine this installs it (as root,
// through apt, without recommended packages). apt's own output goes to .artifacts/chromium-install.log; the
// console gets one line: present, installed, or could not install (then the browser tests skip with their reason).
// It never fails the test command by itself.
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../.artifacts/', import.meta.url);
const LOG_NAME = '.artifacts/chromium-install.log';
const SKIP = 'browser tests will skip';

function install() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = openSync(new URL('chromium-install.log', ARTIFACTS), 'w');
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'chromium']]) {
      writeSync(log, `$ apt-get ${args.join(' ')}\n`);
      const run = spawnSync('apt-get', args, { stdio: ['ignore', log, log], env });
      if (run.error || run.status !== 0) {
        const why = run.error ? run.error.message : run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
        writeSync(log, `apt-get ${args[0]} failed: ${why}\n`);
        return `apt-get ${args[0]} failed (${why})`;
      }
    }
    return existsSync(CHROMIUM) ? null : `apt-get installed chromium but ${CHROMIUM} is missing`;
  } finally {
    closeSync(log);
  }
}

if (existsSync(CHROMIUM)) {
  console.log(`chromium: already present (${CHROMIUM})`);
} else if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  console.log(`chromium: could not install (needs root and apt-get); ${SKIP}`);
} else {
  const failure = install();
  console.log(failure === null ? `chromium: installed ${CHROMIUM} (apt log: ${LOG_NAME})` : `chromium: could not install: ${failure}, see ${LOG_NAME}; ${SKIP}`);
}
