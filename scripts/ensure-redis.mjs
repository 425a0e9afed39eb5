// The Redis store's tests run against real Redis servers (the machine's on 127.0.0.1:6379, and servers and clusters
// they start themselves): on a fresh machine this installs Debian's redis-server (apt-package.mjs).
import { spawnSync } from 'node:child_process';
import { ensureAptPackage } from './apt-package.mjs';

ensureAptPackage({
  name: 'redis-server',
  pkg: 'redis-server',
  found: () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0,
  where: 'redis-server on the PATH',
  skip: 'Redis tests will skip',
});
