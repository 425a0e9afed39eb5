// Ships the dashboard inside the server package: copies packages/dashboard/dist to packages/server/dashboard, which
// the server serves at `/` (from its sources and from its build alike).
import { cp, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));
const to = fileURLToPath(new URL('../dashboard/', import.meta.url));
try {
  await stat(from);
} catch {
  console.error(`server: no dashboard build at ${from}: build @greenroom/dashboard first`);
  process.exit(1);
}
await rm(to, { recursive: true, force: true });
await cp(from, to, { recursive: true });
