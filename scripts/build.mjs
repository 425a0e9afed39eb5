// `npm run build`: builds the packages that are out of date (`--force`: all of them), in dependency order.
import { buildOutOfDate, ensureInstalled, STOPPED } from './workspace.mjs';

try {
  await ensureInstalled();
  await buildOutOfDate({ force: process.argv.includes('--force') });
} catch (err) {
  if (err !== STOPPED) throw err;
  process.exit(130);
}
