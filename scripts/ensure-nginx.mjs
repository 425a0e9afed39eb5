// The multi-node tests put a real nginx in front of several servers. On a fresh machine this installs Debian's
// nginx package (as root, through apt, without recommended packages) and keeps it from starting a system service:
// the tests run their own unprivileged nginx on a free port. apt's own output goes to .artifacts/nginx-install.log;
// the console gets one line: present, installed, or could not install (then the nginx tests skip with their
// reason). It never fails the test command by itself.
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const NGINX = '/usr/sbin/nginx';
const ARTIFACTS = new URL('../.artifacts/', import.meta.url);
const LOG_NAME = '.artifacts/nginx-install.log';
const SKIP = 'nginx tests will skip';
// Debian's convention for "install, but start no service": invoke-rc.d and deb-systemd-invoke both ask it.
const POLICY = '/usr/sbin/policy-rc.d';

function install() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = openSync(new URL('nginx-install.log', ARTIFACTS), 'w');
  const ownPolicy = !existsSync(POLICY);
  try {
    if (ownPolicy) writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'nginx']]) {
      writeSync(log, `$ apt-get ${args.join(' ')}\n`);
      const run = spawnSync('apt-get', args, { stdio: ['ignore', log, log], env });
      if (run.error || run.status !== 0) {
        const why = run.error ? run.error.message : run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
        writeSync(log, `apt-get ${args[0]} failed: ${why}\n`);
        return `apt-get ${args[0]} failed (${why})`;
      }
    }
    return existsSync(NGINX) ? null : `apt-get installed nginx but ${NGINX} is missing`;
  } finally {
    if (ownPolicy) rmSync(POLICY, { force: true });
    closeSync(log);
  }
}

if (existsSync(NGINX)) {
  console.log(`nginx: already present (${NGINX})`);
} else if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  console.log(`nginx: could not install (needs root and apt-get); ${SKIP}`);
} else {
  const failure = install();
  console.log(failure === null ? `nginx: installed ${NGINX} (apt log: ${LOG_NAME})` : `nginx: could not install: ${failure}, see ${LOG_NAME}; ${SKIP}`);
}
