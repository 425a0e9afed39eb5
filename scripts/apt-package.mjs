// What the ensure-*.mjs scripts share: install one of Debian's packages the tests need, as root, through apt, without
// recommended packages (and, if asked, without starting the system service it brings). apt's own output goes to
// .artifacts/<name>-install.log; the console gets one line: present, installed, or could not install (then the tests
// that need it skip with their reason). It never fails the test command by itself.
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const ARTIFACTS = new URL('../.artifacts/', import.meta.url);
// Debian's convention for "install, but start no service": invoke-rc.d and deb-systemd-invoke both ask it.
const POLICY = '/usr/sbin/policy-rc.d';

/**
 * @param {{ name: string, pkg: string, found: () => boolean, where: string, skip: string, noService?: boolean }} p
 *   name: what the console line calls it; pkg: the Debian package; found: whether it is usable now; where: how the
 *   console names what was found (a path); skip: what the tests do without it; noService: start no system service.
 */
export function ensureAptPackage({ name, pkg, found, where, skip, noService = false }) {
  const logName = `.artifacts/${name}-install.log`;
  if (found()) {
    console.log(`${name}: already present (${where})`);
  } else if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    console.log(`${name}: could not install (needs root and apt-get); ${skip}`);
  } else {
    const failure = install(pkg, new URL(`${name}-install.log`, ARTIFACTS), noService, found, where);
    console.log(failure === null ? `${name}: installed ${where} (apt log: ${logName})` : `${name}: could not install: ${failure}, see ${logName}; ${skip}`);
  }
}

function install(pkg, logFile, noService, found, where) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = openSync(logFile, 'w');
  const ownPolicy = noService && !existsSync(POLICY);
  try {
    if (ownPolicy) writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', pkg]]) {
      writeSync(log, `$ apt-get ${args.join(' ')}\n`);
      const run = spawnSync('apt-get', args, { stdio: ['ignore', log, log], env });
      if (run.error || run.status !== 0) {
        const why = run.error ? run.error.message : run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
        writeSync(log, `apt-get ${args[0]} failed: ${why}\n`);
        return `apt-get ${args[0]} failed (${why})`;
      }
    }
    return found() ? null : `apt-get installed ${pkg} but ${where} is missing`;
  } finally {
    if (ownPolicy) rmSync(POLICY, { force: true });
    closeSync(log);
  }
}
