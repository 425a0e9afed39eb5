// The Redis store's tests run against real Redis servers (the machine's on 127.0.0.1:6379, and servers and clusters
// they start themselves). On a fresh machine this installs Debian's redis-server (as root, through apt, without
// recommended packages). apt's own output goes to .artifacts/redis-install.log; the console gets one line: present,
// installed, or could not install (then the Redis tests skip with their reason). It never fails the test command by
// itself.
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const ARTIFACTS = new URL('../.artifacts/', import.meta.url);
const LOG_NAME = '.artifacts/redis-install.log';
const SKIP = 'Redis tests will skip';

/** Whether `redis-server` runs from the PATH. */
function found() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function install() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = openSync(new URL('redis-install.log', ARTIFACTS), 'w');
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'redis-server']]) {
      writeSync(log, `$ apt-get ${args.join(' ')}\n`);
      const run = spawnSync('apt-get', args, { stdio: ['ignore', log, log], env });
      if (run.error || run.status !== 0) {
        const why = run.error ? run.error.message : run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
        writeSync(log, `apt-get ${args[0]} failed: ${why}\n`);
        return `apt-get ${args[0]} failed (${why})`;
      }
    }
    return found() ? null : 'apt-get installed redis-server but it is not on the PATH';
  } finally {
    closeSync(log);
  }
}

if (found()) {
  console.log('redis-server: already present');
} else if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  console.log(`redis-server: could not install (needs root and apt-get); ${SKIP}`);
} else {
  const failure = install();
  console.log(failure === null ? `redis-server: installed (apt log: ${LOG_NAME})` : `redis-server: could not install: ${failure}, see ${LOG_NAME}; ${SKIP}`);
}
