// Browser tests drive Debian's chromium with playwright-core. On a fresh machine this installs it (as root,
// through apt); where that is impossible it says why, and the browser tests skip with that reason.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const CHROMIUM = '/usr/bin/chromium';

if (existsSync(CHROMIUM)) {
  console.log(`chromium: ${CHROMIUM} present`);
} else if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  console.log('chromium: not installed and cannot install it here (needs root and apt-get); browser tests will skip');
} else {
  console.log('chromium: installing Debian package chromium');
  const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (run(['update', '-qq']).status !== 0 || run(['install', '-y', '-qq', 'chromium']).status !== 0) {
    console.error('chromium: apt-get failed');
    process.exit(1);
  }
}
