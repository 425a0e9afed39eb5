/**
 * Redis for tests: the machine's Redis (127.0.0.1:6379) with a key prefix per test, or Redis servers and three-master
 * clusters a test starts itself (on free ports, keeping nothing on disk unless asked) and stops by PID.
 *
 *   redisServerFound()   whether `redis-server` is installed (tests that need Redis skip, saying so, only if not)
 *   redisAvailable()     whether the machine's Redis answers at MACHINE_REDIS_URL
 *   redisPrefix()        a fresh key prefix (`t:<random>:`); dropPrefix(client or url, prefix) removes its keys
 *   startRedis(options)  a standalone server: { port, url, pid, dir, stop(), kill9() }
 *   startCluster()       a three-master cluster: { urls, ports, stop() }
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../src/cluster/redis.js';

export const MACHINE_REDIS_URL = 'redis://127.0.0.1:6379';

/** Whether `redis-server` is on the PATH. */
export function redisServerFound(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Whether the machine's Redis answers PING (within a second). */
export function redisAvailable(): Promise<boolean> {
  return answersPing(6379);
}

/** A key prefix no other test uses (the config's GREENROOM_REDIS_PREFIX accepts it). */
export function redisPrefix(): string {
  return `t:${randomBytes(6).toString('hex')}:`;
}

/** Removes every key under `prefix` (SCAN + UNLINK; on every master of a cluster). */
export async function dropPrefix(target: RedisClient | string, prefix: string): Promise<void> {
  const client = typeof target === 'string' ? new Redis(target, { lazyConnect: true, maxRetriesPerRequest: 1 }) : target;
  try {
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scanBuffer(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = String(next);
        // One UNLINK per key: on a cluster node, keys of one call must share a slot.
        await Promise.all(keys.map((key) => node.unlink(key)));
      } while (cursor !== '0');
    }
  } finally {
    if (typeof target === 'string') client.disconnect();
  }
}

export interface RedisServer {
  port: number;
  url: string;
  pid: number;
  /** Its working dir (the append-only file lives here). */
  dir: string;
  /** Shuts it down (SIGTERM, waits for the exit) and removes its dir. */
  stop(): Promise<void>;
  /** Kills it with SIGKILL and waits for the exit; its dir is kept (start another on it with `dir`). */
  kill9(): Promise<void>;
}

export interface StartRedisOptions {
  /** `appendonly yes` with `appendfsync always`: every acknowledged write survives a kill. */
  appendonly?: boolean;
  /** The port (default: a free one). */
  port?: number;
  /** The working dir (default: a new temp dir): pass a killed server's to start it again on its data. */
  dir?: string;
}

/** Starts a `redis-server` of its own and waits until it answers PING. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'greenroom-redis-')));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
  args.push(...(options.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  const child = await launch(args, port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    dir,
    stop: async () => {
      await end(child, 'SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    kill9: () => end(child, 'SIGKILL'),
  };
}

export interface RedisCluster {
  /** One URL per master (any of them seeds a client). */
  urls: string[];
  ports: number[];
  /** Stops every node (SIGTERM) and removes their dirs. */
  stop(): Promise<void>;
}

/** Starts three masters, joins them into a cluster (no replicas) and waits for `cluster_state:ok` on each. */
export async function startCluster(): Promise<RedisCluster> {
  const nodes: Array<{ port: number; dir: string; child: ChildProcess }> = [];
  const stop = async () => {
    for (const node of nodes) await end(node.child, 'SIGTERM');
    for (const node of nodes) await rm(node.dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      // The cluster bus listens on port + 10000: both must be free.
      const port = await freePort((p) => p + 10000 < 65536, [10000]);
      const dir = await mkdtemp(join(tmpdir(), 'greenroom-redis-cluster-'));
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`);
      nodes.push({ port, dir, child: await launch(args, port) });
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    const deadline = Date.now() + 20_000;
    for (const { port } of nodes) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).stdout ?? '';
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok on port ${port}: ${info}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { urls: nodes.map((n) => `redis://127.0.0.1:${n.port}`), ports: nodes.map((n) => n.port), stop };
}

/** Spawns redis-server (not daemonized: its PID is the child's) and waits until it answers PING. */
async function launch(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited at start (port ${port}): ${stderr}`);
    if (await answersPing(port)) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`redis-server did not answer on port ${port} within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function end(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** Whether something on 127.0.0.1:`port` answers a PING with PONG (within a second). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/** A port nothing listens on (nor on port + each of `alsoFree`), as far as a bind can tell. */
async function freePort(accept: (port: number) => boolean = () => true, alsoFree: number[] = []): Promise<number> {
  for (;;) {
    const port = await bindable(0);
    if (!accept(port)) continue;
    let free = true;
    for (const offset of alsoFree) if ((await bindable(port + offset).catch(() => null)) === null) free = false;
    if (free) return port;
  }
}

function bindable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}
