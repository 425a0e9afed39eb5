/**
 * The `greenroom` command: `serve`, and user administration. Configuration comes from GREENROOM_* variables
 * (docs/configuration.md).
 */
import { parseArgs } from 'node:util';
import type { UserView } from './actors/records.js';
import { USER_STORE } from './actors/user-store.js';
import { openAdminChannel } from './admin-channel.js';
import { loadConfig } from './config.js';
import { ConfigError, GreenroomError, StoreError } from './errors.js';
import { Greenroom } from './server.js';

const HELP = `greenroom — an actor-model backend for WebSocket sessions

Usage:
  greenroom serve                         start the server (GREENROOM_* variables configure it)
  greenroom user add <username> [--role R] [--password-stdin]
                                          create a user (password from stdin or GREENROOM_USER_PASSWORD)
  greenroom user list [--json]            list users
  greenroom user block <username>         block a user: revokes all sessions, closes sockets (4003)
  greenroom user unblock <username>       unblock a user
  greenroom user role <username> <role>   change a user's role
  greenroom --help                        this text

User commands talk to the running server when it is up (set GREENROOM_ADMIN=name:password for that), and open
the data dir under its lock when it is not.`;

async function serve(): Promise<void> {
  const server = await Greenroom.start();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1); // a second signal: exit at once
    server.core.log.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        server.core.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
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
    options: { role: { type: 'string' }, 'password-stdin': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const [command, name, extra] = positionals;
  const config = loadConfig();
  if (!command || !['add', 'list', 'block', 'unblock', 'role'].includes(command)) throw new ConfigError(`unknown user command\n\n${HELP}`);
  if (command !== 'list' && !name) throw new ConfigError(`greenroom user ${command} needs a username`);
  const password = command === 'add' ? await readPassword(values['password-stdin'] === true) : '';
  const channel = await openAdminChannel(config);
  try {
    const byName = () => channel.ask<UserView>(USER_STORE, 'Get', { username: name });
    let out: unknown;
    switch (command) {
      case 'add':
        out = await channel.ask<UserView>(USER_STORE, 'Create', { username: name, password, role: values.role ?? 'user' });
        break;
      case 'list': {
        const users: UserView[] = [];
        let cursor: string | null = null;
        do {
          const page: { items: UserView[]; nextCursor: string | null } = await channel.ask(USER_STORE, 'GetAll', { cursor, limit: 500 });
          users.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        if (values.json) out = users;
        else {
          for (const u of users) console.log(`${u.uid}  ${u.username.padEnd(24)} ${u.role.padEnd(8)} ${u.blocked ? 'blocked' : ''}`);
          return;
        }
        break;
      }
      case 'block':
        out = await channel.ask(USER_STORE, 'Block', { uid: (await byName()).uid });
        break;
      case 'unblock':
        out = await channel.ask(USER_STORE, 'Unblock', { uid: (await byName()).uid });
        break;
      case 'role':
        if (!extra) throw new ConfigError('greenroom user role needs a username and a role');
        out = await channel.ask(USER_STORE, 'Update', { uid: (await byName()).uid, role: extra });
        break;
    }
    console.log(JSON.stringify(out));
  } finally {
    await channel.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return;
  }
  if (command === 'serve') return serve();
  if (command === 'user') return user(rest);
  throw new ConfigError(`unknown command ${command}\n\n${HELP}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // Operator-facing errors print their message only (no stack); anything else is a bug and prints in full.
  if (err instanceof ConfigError || err instanceof StoreError) console.error(`greenroom: ${err.message}`);
  else if (err instanceof GreenroomError) console.error(`greenroom: ${err.code}: ${err.message}`);
  else if (err instanceof Error && !(err as NodeJS.ErrnoException).code) console.error(`greenroom: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
