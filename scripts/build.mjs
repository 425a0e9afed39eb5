// `npm run build`: builds the packages that are out of date (`--force`: all of them), in dependency order.
import { buildOutOfDate, ensureInstalled } from './workspace.mjs';

ensureInstalled();
buildOutOfDate({ force: process.argv.includes('--force') });
