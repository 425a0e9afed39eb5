/**
 * The `greenroom` command: `serve`, user administration, and backups of the store. Configuration comes from
 * GREENROOM_* variables (docs/configuration.md).
 */
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { UserView } from '../actors/records.js';
import { allPages } from '../actors/paging.js';
import { UserStore } from '../actors/user-store.js';
import { loadConfig } from '../config.js';
import { ConfigError, GreenroomError, StoreError } from '../errors.js';
import { serve } from '../serve.js';
import { BackupError } from '../store/backup.js';
import { LowdbStore } from '../store/lowdb-store.js';
import { loadActors } from './actors-module.js';
import { backupStore, openAdminChannel } from './admin-channel.js';

const HELP = `greenroom — an actor-model backend for WebSocket sessions

Usage:
  greenroom serve [--actors MODULE]       start the server (GREENROOM_* variables configure it). --actors serves
                                          an app's actors beside the built-ins: MODULE is a path (relative to
                                          here) or a package name, whose \`actors\` export (or default export)
                                          is an array of actors made with defineActor. SIGTERM or SIGINT stops
                                          the server gracefully (exit 0); a second one a second later exits 1.
  greenroom user add <username> [--role R] [--display-name NAME] [--password-stdin]
                                          create a user (password from stdin or GREENROOM_USER_PASSWORD);
                                          refused when GREENROOM_PASSWORDS=false
  greenroom user list [--json]            list users
  greenroom user block <username|uid>     block a user: revokes all sessions, closes sockets (4003)
  greenroom user unblock <username|uid>   unblock a user
  greenroom user role <username|uid> <role>
                                          change a user's role
  greenroom user … --server URL           any user command, against the server at URL (see below)
  greenroom backup <file> [--force]       write a consistent copy of the store to <file> (mode 0600): every write
                                          acknowledged before the command started is in it. A running server on
                                          this data dir writes it (through its admin socket); with none, the
                                          command reads the store itself, under the data dir's lock. An existing
                                          <file> is refused unless --force.
  greenroom restore <file>                replace the store with a backup; the server must be stopped. The store
                                          it replaces is kept as <data>/greenroom.json.before-restore.
  greenroom --help                        this text

How user commands reach the server (GREENROOM_DATA names the data dir):
  - a server runs on this data dir: through its admin socket <data>/greenroom.sock (mode 0600, so whoever owns
    the data dir administers the server). No password is needed and no session is made.
  - none runs: the command opens the data dir itself, under its lock.
  - --server URL (or GREENROOM_SERVER_URL): a server on another machine, as the admin named by
    GREENROOM_ADMIN=name:password. https:// is required (http:// only for a loopback host); the command logs in,
    and logs out when it is done.`;

async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseCommand({ args, allowPositionals: false, options: { actors: { type: 'string' } } });
  const actors = values.actors === undefined ? [] : await loadActors(values.actors, typedPath('.'));
  await serve({ actors });
}

async function readPassword(fromStdin: boolean): Promise<string> {
  if (!fromStdin) {
    const fromEnv = process.env.GREENROOM_USER_PASSWORD;
    if (fromEnv) return fromEnv;
    throw new ConfigError('give the password on stdin with --password-stdin, or in GREENROOM_USER_PASSWORD');
  }
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.split(/\r?\n/, 1)[0] ?? '';
}

async function user(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { role: { type: 'string' }, 'display-name': { type: 'string' }, 'password-stdin': { type: 'boolean' }, json: { type: 'boolean' }, server: { type: 'string' } },
  });
  const [command, named, extra] = positionals;
  const name = named ?? '';
  const config = loadConfig();
  if (!command || !['add', 'list', 'block', 'unblock', 'role'].includes(command)) throw new ConfigError(`unknown user command\n\n${HELP}`);
  if (command !== 'list' && !name) throw new ConfigError(`greenroom user ${command} needs a username`);
  if (command === 'add' && !config.passwords) {
    throw new ConfigError('greenroom user add makes a password user, but built-in passwords are turned off (GREENROOM_PASSWORDS=false): users are made by their first sign-in through the identity provider (POST /auth/exchange); the other user commands still work');
  }
  const password = command === 'add' ? await readPassword(values['password-stdin'] === true) : '';
  const serverUrl = values.server ?? (process.env.GREENROOM_SERVER_URL || undefined);
  const channel = await openAdminChannel(config, { serverUrl });
  let failed = false;
  try {
    // A user is named by username, or by uid (a uid is never a username: usernames hold no dashes in that shape).
    const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    const byName = () => channel.ask(UserStore.Get, UID.test(name) ? { uid: name } : { username: name });
    let out: unknown;
    switch (command) {
      case 'add':
        out = await channel.ask(UserStore.Create, {
          username: name,
          password,
          role: values.role ?? 'user',
          ...(values['display-name'] !== undefined ? { displayName: values['display-name'] } : {}),
        });
        break;
      case 'list': {
        const users = await allPages(async (cursor) => {
          const page = await channel.ask(UserStore.GetAll, { cursor, limit: 500 });
          return { items: page.items, next: page.nextCursor };
        });
        if (values.json) out = users;
        else {
          for (const u of users) console.log(`${u.uid}  ${u.username.padEnd(24)} ${u.role.padEnd(8)} ${u.blocked ? 'blocked' : ''}`);
          return;
        }
        break;
      }
      case 'block':
        out = await channel.ask(UserStore.Block, { uid: (await byName()).uid });
        break;
      case 'unblock':
        out = await channel.ask(UserStore.Unblock, { uid: (await byName()).uid });
        break;
      case 'role':
        if (!extra) throw new ConfigError('greenroom user role needs a username and a role');
        out = await channel.ask(UserStore.Update, { uid: (await byName()).uid, role: extra });
        break;
    }
    console.log(JSON.stringify(out));
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // A failure to close (e.g. to log the remote session out) is reported, without hiding the command's own error.
    await channel.close().catch((err: unknown) => {
      if (!failed) throw err;
      console.error(`greenroom: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
}

/** parseArgs, with its errors (unknown option, missing value) as the operator-facing kind. */
function parseCommand<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new ConfigError(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
  }
}

/** A path as typed: relative to where the command was typed (npm and pnpm scripts set INIT_CWD to it). */
function typedPath(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path);
}

async function backup(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand({ args, allowPositionals: true, options: { force: { type: 'boolean' } } });
  if (positionals.length !== 1 || !positionals[0]) throw new ConfigError('greenroom backup needs one file to write the backup to');
  const config = loadConfig();
  const file = typedPath(positionals[0]);
  const done = await backupStore(config, file, { overwrite: values.force === true });
  const how = done.mode === 'socket' ? 'written by the server running on' : 'read under the lock of';
  console.log(`backup of the store ${how} ${config.dataDir}: ${done.file} (${done.bytes} bytes, mode 0600)`);
}

async function restore(args: string[]): Promise<void> {
  const { positionals } = parseCommand({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1 || !positionals[0]) throw new ConfigError('greenroom restore needs one backup file');
  const config = loadConfig();
  if (config.store !== 'lowdb') throw new ConfigError(`greenroom restore restores the embedded store; a ${config.store} store is restored with its own tools`);
  const file = typedPath(positionals[0]);
  const done = await LowdbStore.restore(config.dataDir, file);
  console.log(`restored ${file} into ${done.store} (${done.bytes} bytes)`);
  if (done.previous) {
    console.log(`the store it replaced is kept as ${done.previous}: to undo, run greenroom restore ${done.previous}`);
  } else {
    console.log('the data dir held no store before: nothing was replaced');
  }
  console.log(`sessions in the backup stay valid only under the secret they were made with (GREENROOM_SECRET, or ${resolve(config.dataDir, 'secret')})`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return;
  }
  if (command === 'serve') return serveCommand(rest);
  if (command === 'user') return user(rest);
  if (command === 'backup') return backup(rest);
  if (command === 'restore') return restore(rest);
  throw new ConfigError(`unknown command ${command}\n\n${HELP}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // Operator-facing errors print their message only (no stack); anything else is a bug and prints in full.
  if (err instanceof ConfigError || err instanceof StoreError) console.error(`greenroom: ${err.message}`);
  else if (err instanceof BackupError) console.error(`greenroom: ${err.code}: ${err.message}`);
  else if (err instanceof GreenroomError) console.error(`greenroom: ${err.code}: ${err.message}`);
  else if (err instanceof Error && !(err as NodeJS.ErrnoException).code) console.error(`greenroom: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
