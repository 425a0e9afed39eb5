/**
 * Several real Greenroom servers sharing one Redis, run as an operator runs them: each node is the built
 * `greenroom serve` (packages/server/bin/greenroom.mjs; the test command builds before jest runs) in a process of its
 * own, with its own data dir and port, and the same secret, Redis and key prefix as the others.
 *
 *   const prefix = testPrefix();                                   // redis.ts
 *   const nodes = await startNodes(3, { prefix, env: { GREENROOM_REFRESH_GRACE_S: '5' } });
 *   nodes.url(0);                                                  // http://127.0.0.1:<port>, ready (/readyz 200)
 *   await nodes.kill(1, 'SIGKILL');                                // resolves once the process is gone
 *   await nodes.stop();                                            // SIGTERM to the others; data dirs removed
 *   await deleteKeys(prefix);
 *
 * Every node is started with GREENROOM_ADMIN=ADMIN (an admin made once, on the empty store).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REDIS_URL } from './redis.js';

const serverDir = fileURLToPath(new URL('../../../server/', import.meta.url));
const CLI = join(serverDir, 'bin/greenroom.mjs');
const BUILT = join(serverDir, 'dist/cli/main.js');

/** How long a node may take to listen and turn ready. */
const START_TIMEOUT_MS = 30_000;
/** How long a SIGTERM may take (the graceful stop waits at most the ask timeout) before the node is killed. */
const STOP_TIMEOUT_MS = 20_000;
/** The end of a node's output kept for failure messages. */
const OUTPUT_KEPT = 1 << 20;

/** The admin every node creates on an empty store. */
export const ADMIN = { username: 'admin', password: 'nodes-admin-password-1' } as const;

export interface NodesOptions {
  /** The key prefix (GREENROOM_REDIS_PREFIX); the caller deletes its keys afterwards (redis.ts `deleteKeys`). */
  prefix: string;
  /** GREENROOM_REDIS_URL of every node (default: REDIS_URL). */
  redisUrl?: string;
  /** More environment for every node, or per node by index (e.g. one node's Redis URL through a TcpProxy). */
  env?: Record<string, string> | ((i: number) => Record<string, string>);
  /** More arguments of `greenroom serve` (e.g. `--actors <module>`). */
  args?: readonly string[];
  /** Also writes node i's output to `<logs>-node<i>.log` (its directory must exist), to read after a failure. */
  logs?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Nodes {
  readonly size: number;
  /** `http://127.0.0.1:<port>` of node i. */
  url(i: number): string;
  port(i: number): number;
  pid(i: number): number;
  /** Sends `signal` (default SIGTERM) to node i and resolves once it has exited. */
  kill(i: number, signal?: NodeJS.Signals): Promise<Exit>;
  /** Node i's output so far (its JSON log lines), for failure messages. */
  output(i: number): string;
  /** Stops every node still running (SIGTERM, SIGKILL past 20 s) and removes their data dirs. */
  stop(): Promise<void>;
}

interface Node {
  child: ChildProcess;
  dataDir: string;
  port: number;
  exited: Promise<Exit>;
  output(): string;
}

// A test process that ends without stop() (a crash, a timeout) must not leave servers behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `n` nodes and resolves when every one is ready (`GET /readyz` 200); on a failure none is left running.
 * Node 0 starts first and makes the admin; the others then start together, as in a rolling start. (Several nodes
 * starting at once on an empty store is a case of its own, in harness.test.ts.)
 */
export async function startNodes(n: number, options: NodesOptions): Promise<Nodes> {
  if (!existsSync(BUILT)) throw new Error(`the server is not built (${BUILT} is missing): run node scripts/build.mjs`);
  const secret = randomBytes(32).toString('hex');
  const started = await Promise.allSettled([startNode(0, secret, options)]);
  if (started[0]!.status === 'fulfilled') {
    started.push(...(await Promise.allSettled(Array.from({ length: n - 1 }, (_, i) => startNode(i + 1, secret, options)))));
  }
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map(stopNode));
    throw failed.reason;
  }
  const at = (i: number): Node => {
    const node = nodes[i];
    if (!node) throw new Error(`no node ${i} (${n} started)`);
    return node;
  };
  return {
    size: n,
    url: (i) => `http://127.0.0.1:${at(i).port}`,
    port: (i) => at(i).port,
    pid: (i) => at(i).child.pid!,
    kill: (i, signal = 'SIGTERM') => {
      const node = at(i);
      node.child.kill(signal);
      return node.exited;
    },
    output: (i) => at(i).output(),
    stop: async () => {
      await Promise.all(nodes.map(stopNode));
    },
  };
}

async function startNode(i: number, secret: string, options: NodesOptions): Promise<Node> {
  const dataDir = await mkdtemp(join(tmpdir(), `greenroom-node${i}-`));
  // The machine's GREENROOM_* settings (and npm's INIT_CWD, which the command resolves paths from) stay out.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_') && k !== 'INIT_CWD'));
  const env = {
    ...base,
    GREENROOM_HOST: '127.0.0.1',
    GREENROOM_STORE: 'redis',
    GREENROOM_REDIS_URL: options.redisUrl ?? REDIS_URL,
    GREENROOM_REDIS_PREFIX: options.prefix,
    GREENROOM_SECRET: secret,
    GREENROOM_ADMIN: `${ADMIN.username}:${ADMIN.password}`,
    GREENROOM_LOG_LEVEL: 'info',
    ...(typeof options.env === 'function' ? options.env(i) : options.env),
    GREENROOM_PORT: '0',
    GREENROOM_DATA: dataDir,
  };
  const child = spawn(process.execPath, [CLI, 'serve', ...(options.args ?? [])], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let out = '';
  const file = options.logs === undefined ? null : createWriteStream(`${options.logs}-node${i}.log`);
  const keep = (d: Buffer) => {
    file?.write(d);
    out += d.toString();
    if (out.length > OUTPUT_KEPT) out = out.slice(-OUTPUT_KEPT);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      file?.end();
      resolve({ code, signal });
    }),
  );
  const node: Node = { child, dataDir, port: 0, exited, output: () => out };
  try {
    node.port = await listening(node, i);
    await ready(node, i);
    return node;
  } catch (err) {
    await stopNode(node);
    throw err;
  }
}

/** The port of the `greenroom listening` log line (GREENROOM_PORT=0 lets the system choose it). */
function listening(node: Node, i: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${i} did not listen within ${START_TIMEOUT_MS} ms:\n${node.output()}`)), START_TIMEOUT_MS);
    let seen = 0;
    const look = () => {
      const lines = node.output().split('\n');
      for (const line of lines.slice(seen, -1)) {
        const url = listeningUrl(line);
        if (url === null) continue;
        clearTimeout(timer);
        node.child.stdout!.off('data', look);
        return resolve(Number(new URL(url).port));
      }
      seen = lines.length - 1;
    };
    node.child.stdout!.on('data', look);
    look();
    void node.exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`node ${i} exited (${e.signal ?? e.code}) before listening:\n${node.output()}`));
    });
  });
}

function listeningUrl(line: string): string | null {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === 'greenroom listening' && typeof entry.url === 'string' ? entry.url : null;
  } catch {
    return null;
  }
}

/** Waits for `GET /readyz` to answer 200 (the node reaches its store). */
async function ready(node: Node, i: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  for (;;) {
    if (node.child.exitCode !== null || node.child.signalCode !== null) throw new Error(`node ${i} exited before it was ready:\n${node.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${node.port}/readyz`, { signal: AbortSignal.timeout(5000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`node ${i} was not ready within ${START_TIMEOUT_MS} ms (/readyz: ${last}):\n${node.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode === null && node.child.signalCode === null) {
    node.child.kill('SIGTERM');
    const late = setTimeout(() => node.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await node.exited;
    clearTimeout(late);
  }
  await rm(node.dataDir, { recursive: true, force: true });
}
