// The multi-node tests put a real nginx in front of several servers: on a fresh machine this installs Debian's nginx
// (apt-package.mjs) without starting its system service: the tests run their own unprivileged nginx on a free port.
import { existsSync } from 'node:fs';
import { ensureAptPackage } from './apt-package.mjs';

const NGINX = '/usr/sbin/nginx';
ensureAptPackage({ name: 'nginx', pkg: 'nginx', found: () => existsSync(NGINX), where: NGINX, skip: 'nginx tests will skip', noService: true });
