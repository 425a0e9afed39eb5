// Browser tests drive Debian's chromium with playwright-core: on a fresh machine this installs it (apt-package.mjs).
import { existsSync } from 'node:fs';
import { ensureAptPackage } from './apt-package.mjs';

const CHROMIUM = '/usr/bin/chromium';
ensureAptPackage({ name: 'chromium', pkg: 'chromium', found: () => existsSync(CHROMIUM), where: CHROMIUM, skip: 'browser tests will skip' });
