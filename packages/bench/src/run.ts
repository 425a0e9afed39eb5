/**
 * `pnpm bench`: Greenroom against raw `ws`, in one run, with the load clients in processes of their own.
 *
 * Phases (each bounded in time, each with its own fresh server processes):
 *   handshakes  raw ws upgrades/s | Greenroom bearer upgrades/s (authenticate + awaited registration + 101)
 *   throughput  raw ws echo msg/s | ws + JSON echo msg/s | Greenroom asks/s to a trivial actor (same load shape)
 *   rooms       Greenroom asks/s to Echo | chat posts/s (stored, then pushed to the room) to 1 room | to 100 rooms
 *   memory      server RSS and heap per idle connection at N connections: raw ws | Greenroom (authenticated)
 *   refresh     N concurrent POST /auth/refresh with one token: time, and rotations (generation in the store file)
 *   lowdb       refreshes/s of distinct sessions on a lowdb store of 10,000 users and 20,000 sessions
 *   reconnect   N clients reconnect after a server restart (SIGTERM, start again): raw ws | Greenroom
 *   startup     spawn → first GET /healthz 200 of the `greenroom serve` command: raw ws | built | ts-node | built on a
 *               store of 10,000 users and 20,000 sessions (each start measured several times, median)
 *   soak        (only when named) minutes of sign-in → refresh → logout cycles: latencies first vs last, the store after
 *   cluster     (only when named) several built nodes on one Redis: asks/s on 1 and 2 nodes beside raw ws and a lowdb
 *               node | revocation latency across nodes | handshakes/s and refreshes/s at scale, Redis beside lowdb
 *
 * Flags: --ci (short configuration, writes no docs), --only=phase,phase (prints; the docs' table is rewritten only by
 * a run of every phase, the several-nodes section by any run of its phase), --profile (the Greenroom server of the
 * handshakes, throughput and lowdb phases runs under --cpu-prof; by default only those phases run, and only the
 * profile section of docs/benchmarks.md is written), --no-write, --out=FILE, --duration=S (per round), --warmup=S,
 * --redis=URL (the cluster phase's Redis; default redis://127.0.0.1:6379).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { SeededSession } from '@greenroom/server/testing';
import type { RateResult, RevocationResult } from './client.js';
import type { SeedStoreResult } from './seed-store.js';
import { CI, FULL, type BenchConfig } from './config.js';
import { BENCH_DIR, killAll, Proc } from './ipc.js';
import { dropKeys, redisVersion } from './redis-keys.js';
import { profileMarkdown, readProfile, summarize, type ProfileSummary, type Window } from './profile.js';
import {
  machineInfo,
  printTable,
  rowsOf,
  runMarkdown,
  writeDocs,
  type ClusterResult,
  type ClusterSetup,
  type ClusterSize,
  type LowdbSize,
  type Results,
  type ScaleSide,
  type StartupSeries,
  type StormResult,
} from './report.js';
import { Histogram, median, sleep } from './stats.js';

const PHASES = ['handshakes', 'throughput', 'rooms', 'memory', 'refresh', 'lowdb', 'mailbox', 'reconnect', 'startup', 'soak', 'cluster'] as const;
type Phase = (typeof PHASES)[number];
/**
 * What a run without --only runs: every phase but the soak, which takes minutes of its own, and the several nodes,
 * which take minutes too and need a Redis. `bench:ci` runs the several nodes as well (seconds in its configuration).
 */
const DEFAULT_PHASES: Phase[] = PHASES.filter((p) => p !== 'soak' && p !== 'cluster');
const CI_PHASES: Phase[] = [...DEFAULT_PHASES, 'cluster'];

// `pnpm bench -- --flag` passes the `--` through.
const argv = process.argv.slice(2).filter((a) => a !== '--');
const { values: args } = parseArgs({
  args: argv,
  options: {
    ci: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    out: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    'soak-minutes': { type: 'string' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
  allowPositionals: false,
});

const cfg: BenchConfig = structuredClone(args.ci ? CI : FULL);
if (args.duration) cfg.durationMs = Number(args.duration) * 1000;
if (args.warmup) cfg.warmupMs = Number(args.warmup) * 1000;
if (args['soak-minutes']) cfg.soak.durationMs = Number(args['soak-minutes']) * 60_000;
const only = args.only ? (args.only.split(',').map((s) => s.trim()) as Phase[]) : args.profile ? (['handshakes', 'throughput', 'lowdb'] as Phase[]) : args.ci ? CI_PHASES : [...DEFAULT_PHASES];
for (const p of only) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}; phases: ${PHASES.join(', ')}`);

const runStarted = Date.now();
const machine = machineInfo();
const work = mkdtempSync(join(tmpdir(), 'greenroom-bench-'));
// Profiles outlive the run (the data dirs do not): they are for opening in DevTools.
const profileDir = args.profile ? mkdtempSync(join(tmpdir(), 'greenroom-bench-profiles-')) : join(work, 'profiles');
const results: Results = { config: cfg, profiled: args.profile };
const failures: Array<{ phase: string; error: string }> = [];
const profiles: Array<{ title: string; summary: ProfileSummary }> = [];

function log(line: string): void {
  const s = ((Date.now() - runStarted) / 1000).toFixed(1).padStart(6);
  console.log(`[${s}s] ${line}`);
}

// ---------------------------------------------------------------- processes

interface Started {
  proc: Proc;
  url: string;
  port: number;
  startMs: number;
}

const STARTUP_MS = 60_000;
const ROOT = resolve(BENCH_DIR, '..', '..');

async function startRaw(mode: 'echo' | 'json', port = 0): Promise<Started> {
  const proc = Proc.fork('./servers/raw.mjs', { name: `raw-${mode}`, plain: true, nodeFlags: ['--expose-gc'], options: { port, mode } });
  const ready = await proc.once<{ url: string; port: number; startMs: number }>('ready', STARTUP_MS);
  return { proc, ...ready };
}

interface GreenroomStart {
  port?: number;
  dataDir?: string;
  secret?: string;
  maxConnections?: number;
  askRate?: number;
  askBurst?: number;
  guestMaxPerWindow?: number;
  /** `GREENROOM_` variables for the server to read (the store: see redisEnv). */
  env?: Record<string, string>;
  /** Run under --cpu-prof, the profile named after this. */
  profile?: string;
}

async function startGreenroom(o: GreenroomStart = {}): Promise<Started & { dataDir: string; secret: string }> {
  const dataDir = o.dataDir ?? mkdtempSync(join(work, 'data-'));
  const secret = o.secret ?? randomBytes(32).toString('hex');
  const nodeFlags = ['--expose-gc'];
  // No --cpu-prof-name: the ts-node loader runs on a thread of its own that writes a profile too (Node names each
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread).
  if (o.profile) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, o.profile)}`);
  const proc = Proc.fork('./servers/greenroom.ts', {
    name: 'greenroom',
    nodeFlags,
    options: {
      port: o.port ?? 0,
      dataDir,
      secret,
      maxConnections: o.maxConnections ?? 20_000,
      askRate: o.askRate ?? 100,
      askBurst: o.askBurst ?? 200,
      ...(o.guestMaxPerWindow ? { guestMaxPerWindow: o.guestMaxPerWindow } : {}),
      ...(o.env ? { env: o.env } : {}),
    },
  });
  const ready = await proc.once<{ url: string; port: number; startMs: number }>('ready', STARTUP_MS);
  return { proc, dataDir, secret, ...ready };
}

async function startSocketIo(port = 0): Promise<Started> {
  const proc = Proc.fork('./servers/socketio.mjs', { name: 'socket.io', plain: true, nodeFlags: ['--expose-gc'], options: { port } });
  const ready = await proc.once<{ url: string; port: number; startMs: number }>('ready', STARTUP_MS);
  return { proc, ...ready };
}

/** The baselines by name: the peers every table shows beside Greenroom. */
type Peer = 'raw' | 'json' | 'socketio';
const PEER_NAMES: Record<Peer, string> = { raw: 'raw ws', json: 'ws + JSON', socketio: 'Socket.IO' };

function startPeer(peer: Peer, port = 0): Promise<Started> {
  return peer === 'socketio' ? startSocketIo(port) : startRaw(peer === 'raw' ? 'echo' : 'json', port);
}

/** What the load clients are told about a peer's wire. */
function wireOf(peer: Peer): { peer?: 'socketio' } {
  return peer === 'socketio' ? { peer: 'socketio' } : {};
}

/** Resolves once `GET <path>` answers 200 (polled every `pollMs`); rejects if `proc` exits or after `timeoutMs`. */
async function awaitHttp200(proc: Proc, port: number, path: string, timeoutMs: number, pollMs = 5): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    if (await answers200(port, path)) return;
    if (!proc.running) throw new Error(`${proc.name} exited before answering ${path}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`${proc.name}: ${path} not 200 within ${timeoutMs / 1000} s`);
    await sleep(pollMs);
  }
}

/**
 * The built server as `npm start` runs it (`node packages/server/bin/greenroom.mjs serve`, on packages/server/dist),
 * configured through its environment; ready once `GET /readyz` answers 200. `startMs` is spawn → ready.
 */
async function startBuiltServe(o: { port: number; dataDir: string; secret: string; maxConnections: number }): Promise<Started> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
  Object.assign(env, {
    GREENROOM_PORT: String(o.port),
    GREENROOM_HOST: '127.0.0.1',
    GREENROOM_DATA: o.dataDir,
    GREENROOM_SECRET: o.secret,
    GREENROOM_MAX_CONNECTIONS: String(o.maxConnections),
    GREENROOM_LOG_LEVEL: 'silent',
  });
  const t0 = performance.now();
  const proc = Proc.spawn([join(ROOT, 'packages', 'server', 'bin', 'greenroom.mjs'), 'serve'], { name: 'greenroom serve (built)', cwd: ROOT, env });
  let output = '';
  proc.child.stdout!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-2_000)));
  proc.child.stderr!.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-2_000)));
  try {
    await awaitHttp200(proc, o.port, '/readyz', STARTUP_MS);
  } catch (err) {
    await proc.stop(2_000);
    throw new Error(`${(err as Error).message}: ${output.trim().split('\n').slice(-5).join(' | ')}`);
  }
  return { proc, url: `http://127.0.0.1:${o.port}`, port: o.port, startMs: performance.now() - t0 };
}

/**
 * The bench's server on the build (servers/greenroom-built.mjs: `node` alone, the built-in actors and Echo, memory over
 * IPC); ready once `GET /readyz` answers 200, `startMs` being spawn → ready.
 */
async function startBuiltBench(
  o: { port: number; dataDir: string; secret: string; maxConnections?: number; profile?: string } & Pick<GreenroomStart, 'askRate' | 'askBurst' | 'env'>,
): Promise<Started> {
  const nodeFlags = ['--expose-gc'];
  if (o.profile) nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, o.profile)}`);
  const options = { port: o.port, dataDir: o.dataDir, secret: o.secret, maxConnections: o.maxConnections ?? 20_000, askRate: o.askRate, askBurst: o.askBurst, env: o.env };
  const t0 = performance.now();
  const proc = Proc.fork('./servers/greenroom-built.mjs', { name: 'greenroom (built)', plain: true, nodeFlags, options });
  await Promise.race([awaitHttp200(proc, o.port, '/readyz', cfg.lowdb.timeoutMs), proc.exited.then(({ code, signal }) => Promise.reject(new Error(`the built server exited (${signal ?? code}) while starting`)))]);
  const startMs = performance.now() - t0;
  return { proc, url: `http://127.0.0.1:${o.port}`, port: o.port, startMs };
}

/** Bytes on disk of a data dir's regular files, the secret left out: the store, whatever files it keeps. */
function storeBytesOf(dataDir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'secret') continue;
    bytes += statSync(join(dataDir, entry.name)).size;
  }
  return bytes;
}

interface Cpu {
  user: number;
  system: number;
}

/** Runs a rate measurement and reads the servers' CPU time (user + system, summed) over its measured window. */
async function withCpu(servers: Started[], run: () => Promise<RateResult>): Promise<RateResult> {
  const result = run();
  result.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  const cpu = async () => (await Promise.all(servers.map((s) => s.proc.call<Cpu>('cpu')))).reduce((us, c) => us + c.user + c.system, 0);
  await sleep(cfg.warmupMs);
  const a = await cpu();
  await sleep(cfg.durationMs);
  const b = await cpu();
  return { ...(await result), cpuUs: b - a };
}

function seed(server: Started, users: number, sessionsPerUser: number, what: { access?: boolean; refresh?: boolean; role?: string }): Promise<SeededSession[]> {
  return server.proc.call<SeededSession[]>('seed', { users, sessionsPerUser, access: !!what.access, refresh: !!what.refresh, ...(what.role ? { role: what.role } : {}) }, 300_000);
}

/** Load-client processes, started once and used by every phase. */
let clients: Proc[] = [];

async function startClients(n: number): Promise<void> {
  clients = Array.from({ length: n }, (_, i) => Proc.fork('./client.ts', { name: `client-${i}` }));
  await Promise.all(clients.map((c) => c.once('ready', STARTUP_MS)));
}

/** Splits `total` over the client processes: [count, offset] per process. */
function split(total: number): Array<[number, number]> {
  const n = clients.length;
  return clients.map((_, i) => {
    const count = Math.floor(total / n) + (i < total % n ? 1 : 0);
    const offset = i * Math.floor(total / n) + Math.min(i, total % n);
    return [count, offset];
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function expectSome<T extends RateResult>(what: string, r: T): T {
  if (r.count === 0) throw new Error(`${what}: nothing completed (${r.errors} errors; first: ${r.firstError ?? 'none'})`);
  return r;
}

/** The µs window of a client call on the server's clock, for cutting its profile to the measured part. */
async function profiled<T>(server: Started, fn: () => Promise<T>, timing: { warmupMs: number; durationMs: number } = cfg): Promise<{ result: T; window: Window }> {
  const start = (await server.proc.call<number>('mark')) + timing.warmupMs * 1000;
  const result = await fn();
  const end = Math.min(await server.proc.call<number>('mark'), start + timing.durationMs * 1000);
  return { result, window: { start, end } };
}

/** A side of `alternate` whose rounds are profiled on the server: each round's window is kept for the profile. */
function profiledSide(name: string, server: Started, windows: Window[], run: () => Promise<RateResult>): { name: string; run: () => Promise<RateResult> } {
  return {
    name,
    run: async () => {
      const { result, window } = await profiled(server, run);
      windows.push(window);
      return result;
    },
  };
}

async function finishProfile(server: Started, name: string, parts: Array<{ title: string; windows: Window[] }>): Promise<void> {
  await server.proc.call('stop', {}, 30_000).catch(() => undefined);
  await server.proc.exited;
  const dir = join(profileDir, name);
  const main = readdirSync(dir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (!main) throw new Error(`no main-thread profile in ${dir}: ${readdirSync(dir).join(', ')}`);
  const file = join(dir, main);
  // The measured windows, for reading the profile again later (profile.ts FILE --windows windows.json).
  writeFileSync(join(dir, 'windows.json'), JSON.stringify(parts, null, 2));
  const profile = readProfile(file);
  for (const part of parts) {
    const summary = summarize(profile, part.windows, 15);
    profiles.push({ title: part.title, summary });
    console.log(`\n${profileMarkdown(part.title, summary)}`);
  }
  log(`profile written: ${file}`);
}

/**
 * Runs each side's measurement `cfg.rounds` times, the sides alternating and their order rotating every round, so
 * that a machine that gets busier or quieter during the phase moves every side alike. Each side's figure is then the
 * median of its rounds (counts and latencies are pooled), and the ratio is the median of the per-round ratios.
 */
async function alternate(sides: Array<{ name: string; run: () => Promise<RateResult> }>): Promise<Round[][]> {
  const out: Round[][] = sides.map(() => []);
  for (let r = 0; r < cfg.rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (k + r) % sides.length;
      const side = sides[i]!;
      log(`  round ${r + 1}/${cfg.rounds}: ${side.name}`);
      out[i]!.push({ round: r, result: expectSome(side.name, await side.run()) });
    }
  }
  return out;
}

interface Round {
  round: number;
  result: RateResult;
}

// ---------------------------------------------------------------- phases

async function handshakes(): Promise<void> {
  const p = { inflight: cfg.handshake.inflight, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
  const [raw, json, sio, gr] = await Promise.all([startPeer('raw'), startPeer('json'), startPeer('socketio'), startGreenroom(args.profile ? { profile: 'handshakes' } : {})]);
  const tokens = (await seed(gr, cfg.handshake.sessions, 1, { access: true })).map((s) => s.accessToken!);
  const client = clients[0]!;
  const windows: Window[] = [];
  log(`handshakes: ${p.inflight} in flight, ${cfg.rounds} × ${cfg.durationMs / 1000} s each side; Greenroom with bearer tokens of ${tokens.length} sessions`);
  const [rawRounds, jsonRounds, ioRounds, grRounds] = await alternate([
    { name: 'raw ws handshakes', run: () => client.call<RateResult>('handshakes', { url: raw.url, ...p }, cfg.phaseTimeoutMs) },
    { name: 'ws + JSON handshakes', run: () => client.call<RateResult>('handshakes', { url: json.url, ...p }, cfg.phaseTimeoutMs) },
    { name: 'Socket.IO handshakes', run: () => client.call<RateResult>('handshakes', { url: sio.url, ...wireOf('socketio'), ...p }, cfg.phaseTimeoutMs) },
    profiledSide('Greenroom handshakes', gr, windows, () => client.call<RateResult>('handshakes', { url: gr.url, tokens, ...p }, cfg.phaseTimeoutMs)),
  ]);
  results.rawHandshakes = combine(rawRounds!);
  results.jsonHandshakes = combine(jsonRounds!);
  results.ioHandshakes = combine(ioRounds!);
  results.grHandshakes = combine(grRounds!);
  await Promise.all([raw.proc.stop(), json.proc.stop(), sio.proc.stop()]);
  if (args.profile) await finishProfile(gr, 'handshakes', [{ title: 'Handshakes (server side)', windows }]);
  else await gr.proc.stop();
}

async function throughput(): Promise<void> {
  const p = { sockets: cfg.load.sockets, inflight: cfg.load.inflight, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
  const client = clients[0]!;
  const [echo, json, sio, gr] = await Promise.all([
    startPeer('raw'),
    startPeer('json'),
    startPeer('socketio'),
    // The per-connection ask rate limit (100/s, burst 200) would cap this at 5,000 asks/s: raised for this phase.
    startGreenroom({ askRate: 1e9, askBurst: 1e9, ...(args.profile ? { profile: 'asks' } : {}) }),
  ]);
  const tokens = (await seed(gr, p.sockets, 1, { access: true })).map((s) => s.accessToken!);
  const windows: Window[] = [];
  const load = (server: Started, extra: object) => () => withCpu([server], () => client.call<RateResult>('load', { url: server.url, ...p, ...extra }, cfg.phaseTimeoutMs));
  log(`throughput: ${p.sockets} sockets × ${p.inflight} in flight, ${cfg.rounds} × ${cfg.durationMs / 1000} s each side`);
  const [echoRounds, jsonRounds, ioRounds, askRounds, getOwnRounds] = await alternate([
    { name: 'raw ws echo', run: load(echo, { to: 'Echo', type: 'Echo' }) },
    { name: 'ws + JSON echo', run: load(json, { to: 'Echo', type: 'Echo' }) },
    { name: 'Socket.IO ack echo', run: load(sio, wireOf('socketio')) },
    profiledSide('Greenroom asks to Echo.Echo', gr, windows, load(gr, { tokens, to: 'Echo', type: 'Echo' })),
    { name: 'Greenroom asks to UserStore.GetOwn', run: load(gr, { tokens, to: 'UserStore', type: 'GetOwn' }) },
  ]);
  results.rawEcho = combine(echoRounds!);
  results.jsonEcho = combine(jsonRounds!);
  results.ioEcho = combine(ioRounds!);
  results.asks = combine(askRounds!);
  results.getOwn = combine(getOwnRounds!);
  await Promise.all([echo.proc.stop(), json.proc.stop(), sio.proc.stop()]);
  if (args.profile) await finishProfile(gr, 'asks', [{ title: 'Asks (server side)', windows }]);
  else await gr.proc.stop();
}

async function rooms(): Promise<void> {
  const c = cfg.rooms;
  const client = clients[0]!;
  // Asks are not rate limited here either: the phase measures what a post costs, not the limiter.
  const gr = await startGreenroom({ askRate: 1e9, askBurst: 1e9 });
  const tokens = (await seed(gr, c.sockets, 1, { access: true })).map((s) => s.accessToken!);
  const p = { url: gr.url, tokens, sockets: c.sockets, inflight: c.inflight, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
  // Every side subscribes each socket to its room and sends `{room, text}`: the Echo side differs only in the actor.
  const side = (name: string, to: string, type: string, count: number) => ({
    name,
    run: async () => {
      // Each round starts on an empty room: the store file (rewritten on every flush) grows with the messages.
      await gr.proc.call('messages', { clear: true }, 60_000);
      const r = await client.call<RateResult>('load', { ...p, to, type, rooms: { actor: 'BenchRoom', count, text: 'hello, room' } }, cfg.phaseTimeoutMs);
      const { stored } = await gr.proc.call<{ stored: number }>('messages', {}, 60_000);
      // Posts answered before the window (warm-up) or after it are stored too, never fewer than were counted.
      if (to === 'BenchRoom' && stored < r.count) throw new Error(`${name}: ${r.count} posts answered, ${stored} stored`);
      return r;
    },
  });
  log(`rooms: ${c.sockets} sockets × ${c.inflight} in flight, 1 room | ${c.rooms} rooms | Echo.Echo, ${cfg.rounds} × ${cfg.durationMs / 1000} s each side`);
  const [echoRounds, oneRounds, manyRounds] = await alternate([
    side('Greenroom asks to Echo.Echo', 'Echo', 'Echo', c.rooms),
    side('posts to 1 room', 'BenchRoom', 'Post', 1),
    side(`posts to ${c.rooms} rooms`, 'BenchRoom', 'Post', c.rooms),
  ]);
  results.roomsEcho = combine(echoRounds!);
  results.roomsOne = combine(oneRounds!);
  results.roomsMany = combine(manyRounds!);
  await gr.proc.stop();
}

/** What several results add up to: counts summed, latencies pooled, the first error. */
function summed(parts: RateResult[]): Pick<RateResult, 'count' | 'errors' | 'latency' | 'firstError'> {
  const firstError = parts.find((x) => x.firstError)?.firstError;
  return {
    count: parts.reduce((a, x) => a + x.count, 0),
    errors: parts.reduce((a, x) => a + x.errors, 0),
    latency: Histogram.fromSparse(...parts.map((x) => x.latency)).toSparse(),
    ...(firstError ? { firstError } : {}),
  };
}

/** One side's rounds as one result: the median rate, pooled counts and latencies, and each round's rate. */
function combine(rounds: Round[]): RateResult {
  const parts = rounds.map((r) => r.result);
  const rates = parts.map((x) => x.rate);
  return {
    ...summed(parts),
    seconds: parts.reduce((a, x) => a + x.seconds, 0),
    rate: median(rates),
    rounds: rates,
    ...(parts.some((x) => x.pushes !== undefined) ? { pushes: parts.reduce((a, x) => a + (x.pushes ?? 0), 0) } : {}),
    ...(parts.every((x) => x.cpuUs !== undefined) ? { cpuUs: parts.reduce((a, x) => a + x.cpuUs!, 0) } : {}),
  };
}

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

async function memoryOf(server: Started, tokens: string[] | undefined, wire: { peer?: 'socketio' } = {}): Promise<Results['memRaw']> {
  const n = cfg.memory.connections;
  const before = await server.proc.call<Mem>('mem');
  const opened = await Promise.all(
    split(n).map(([count, offset], i) =>
      clients[i]!.call<{ opened: number; errors: number; ms: number; firstError?: string }>(
        'idleOpen',
        { url: server.url, tokens, count, offset, concurrency: cfg.memory.concurrency, ...wire },
        cfg.phaseTimeoutMs,
      ),
    ),
  );
  const total = opened.reduce((a, o) => a + o.opened, 0);
  if (total < n) throw new Error(`only ${total} of ${n} connections opened (first error: ${opened.find((o) => o.firstError)?.firstError})`);
  await sleep(cfg.memory.settleMs);
  const after = await server.proc.call<Mem>('mem');
  await Promise.all(clients.map((c) => c.call('idleClose')));
  return {
    connections: after.connections,
    rssPerConn: (after.rss - before.rss) / total,
    heapPerConn: (after.heapUsed - before.heapUsed) / total,
    externalPerConn: (after.external - before.external) / total,
    rssBefore: before.rss,
    rssAfter: after.rss,
    openSeconds: Math.max(...opened.map((o) => o.ms)) / 1000,
  };
}

async function memory(): Promise<void> {
  const n = cfg.memory.connections;
  // Started together (each is measured alone, its own process's memory): the start-ups overlap.
  // Greenroom: the bench's server on the build (servers/greenroom-built.mjs), which starts in a fraction of ts-node's time.
  const dataDir = mkdtempSync(join(work, 'data-'));
  const secret = randomBytes(32).toString('hex');
  const built = { dataDir, secret, maxConnections: n + 1_000 };
  const [raw, json, sio, seeded] = await Promise.all([startPeer('raw'), startPeer('json'), startPeer('socketio'), startBuiltBench({ port: await freePort(), ...built })]);
  for (const [peer, server] of [['raw', raw], ['json', json], ['socketio', sio]] as const) {
    log(`memory: ${n} idle ${PEER_NAMES[peer]} connections`);
    const m = await memoryOf(server, undefined, wireOf(peer));
    await server.proc.stop();
    if (peer === 'raw') results.memRaw = m;
    else if (peer === 'json') results.memJson = m;
    else results.memIo = m;
  }
  log(`memory: ${n} idle authenticated Greenroom connections (one session each)`);
  const tokens = (await seed(seeded, n, 1, { access: true })).map((s) => s.accessToken!);
  // Measured on a fresh process over the seeded data dir: seeding leaves freed heap pages behind, which the
  // connections would then fill without growing the RSS (one run showed 0.5 KB per connection that way).
  await seeded.proc.stop();
  const gr = await startBuiltBench({ port: await freePort(), ...built });
  results.memGreenroom = await memoryOf(gr, tokens);
  await gr.proc.stop();
}

async function refreshStorm(): Promise<void> {
  const gr = await startGreenroom();
  const [session] = await seed(gr, 1, 1, { refresh: true });
  log(`refresh storm: ${cfg.refreshStorm.concurrency} concurrent refreshes of one token`);
  const r = await clients[0]!.call<{ ms: number; statuses: Record<string, number>; distinctPairs: number }>(
    'refreshStorm',
    { url: gr.url, token: session!.refreshToken, concurrency: cfg.refreshStorm.concurrency },
    cfg.phaseTimeoutMs,
  );
  const stats = await gr.proc.call<{ rotations: number }>('stats');
  // The session as the server holds it: its generation counts its rotations.
  const stored = await gr.proc.call<{ generation: number } | null>('session', { sid: session!.sid });
  await gr.proc.stop();
  results.refreshStorm = { ...r, concurrency: cfg.refreshStorm.concurrency, generation: stored?.generation ?? -1, rotations: stats.rotations };
  if ((r.statuses['200'] ?? 0) === 0) throw new Error(`refresh storm: no refresh succeeded (${JSON.stringify(r.statuses)})`);
}

/**
 * The store at scale. Each size's store file is written straight to disk (src/seed-store.ts) by the bench's server
 * on a scratch dir, whose TokenService mints the refresh tokens; the built server (servers/greenroom-built.mjs) is
 * then started on it with the same secret, and timed from the spawn to `GET /readyz` 200. Heap per stored session is
 * against the same built server on an empty store.
 */
async function lowdb(): Promise<void> {
  const { sizes, sessionsPerUser, inflight, sample } = cfg.lowdb;
  const secret = randomBytes(32).toString('hex');
  const writer = await startGreenroom({ secret });
  const emptyDir = mkdtempSync(join(work, 'lowdb-empty-'));
  const empty = await startBuiltBench({ port: await freePort(), dataDir: emptyDir, secret });
  const emptyMem = await empty.proc.call<Mem>('mem');
  await empty.proc.stop();
  const scale: NonNullable<Results['lowdbScale']> = { inflight, sessionsPerUser, emptyHeap: emptyMem.heapUsed, emptyRss: emptyMem.rss, emptyStartMs: empty.startMs, sizes: [] };
  results.lowdbScale = scale;
  for (const [k, size] of sizes.entries()) {
    const users = Math.ceil(size / sessionsPerUser);
    const dataDir = mkdtempSync(join(work, `lowdb-${size}-`));
    log(`lowdb: writing a store of ${int(users)} users and ${int(users * sessionsPerUser)} sessions`);
    const seeded = await writer.proc.call<SeedStoreResult>('writeSeedStore', { file: join(dataDir, 'greenroom.json'), users, sessionsPerUser, sample }, cfg.lowdb.timeoutMs);
    const row: LowdbSize = { sessions: seeded.sessions, users, seedMs: seeded.ms, seedBytes: seeded.bytes, sample: seeded.refreshTokens.length };
    scale.sizes.push(row);
    log(`lowdb: ${int(row.sessions)} sessions: ${(seeded.bytes / 2 ** 20).toFixed(1)} MiB written in ${ms(seeded.ms)}; starting the built server on it`);
    const profile = args.profile && k === 0 ? `lowdb-${size}` : undefined;
    let gr: Started | undefined;
    try {
      gr = await startBuiltBench({ port: await freePort(), dataDir, secret, ...(profile ? { profile } : {}) });
      row.startMs = gr.startMs;
      const mem = await gr.proc.call<Mem>('mem');
      row.heapPerSession = (mem.heapUsed - emptyMem.heapUsed) / row.sessions;
      row.rssPerSession = (mem.rss - emptyMem.rss) / row.sessions;
      log(`lowdb: ${int(row.sessions)} sessions: ready in ${ms(gr.startMs)}, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB; refreshing ${inflight} distinct sessions at a time`);
      const before = await gr.proc.call<{ flushes: number | null }>('stats');
      const server = gr;
      const { result: r, window } = await profiled(server, () =>
        clients[0]!.call<RateResult & { statuses: Record<string, number> }>(
          'refreshLoad',
          { url: server.url, tokens: seeded.refreshTokens, inflight, warmupMs: cfg.lowdb.warmupMs, durationMs: cfg.lowdb.durationMs },
          cfg.lowdb.timeoutMs,
        ),
        cfg.lowdb,
      );
      const after = await gr.proc.call<{ flushes: number | null }>('stats');
      row.refresh = expectSome(`lowdb refreshes at ${size}`, r);
      row.flushes = after.flushes === null || before.flushes === null ? null : after.flushes - before.flushes;
      const s0 = performance.now();
      if (profile) await finishProfile(gr, profile, [{ title: `lowdb refreshes at ${int(row.sessions)} sessions (server side)`, windows: [window] }]);
      else await gr.proc.stop(cfg.lowdb.timeoutMs);
      row.stopMs = performance.now() - s0;
      row.storeBytes = storeBytesOf(dataDir);
    } catch (err) {
      row.failed = (err as Error).message.split('\n')[0];
      log(`lowdb: ${int(row.sessions)} sessions FAILED: ${row.failed}`);
      if (gr) await gr.proc.stop(5_000);
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
  await writer.proc.stop();
  const failed = scale.sizes.filter((r) => r.failed);
  if (failed.length === scale.sizes.length) throw new Error(`lowdb: every size failed (first: ${failed[0]?.failed})`);
}

type AuthKind = NonNullable<Results['mailbox']>['auth']['guest'];

/** One kind of auth request over several rounds: counts and statuses summed, latencies pooled. */
function mergeAuth(parts: AuthKind[]): AuthKind {
  const statuses: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const firstError = parts.find((p) => p.firstError)?.firstError;
  return {
    count: parts.reduce((a, p) => a + p.count, 0),
    errors: parts.reduce((a, p) => a + p.errors, 0),
    latency: Histogram.fromSparse(...parts.map((p) => p.latency)).toSparse(),
    statuses,
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * The mailbox under load: guest sign-ins per second (each one a new user, device and session, through UserStore,
 * FingerprintStore and SessionStore), then `UserStore.GetOwn` asked at a steady rate, idle and during an open-loop
 * storm of guest sign-ins and refreshes, in alternating rounds. Guest sign-ins stand in for password logins: a
 * scrypt hash at the configured cost takes about a second of CPU here, so 100 logins/s would measure scrypt, not the
 * mailbox.
 */
async function mailbox(): Promise<void> {
  const m = cfg.mailbox;
  const timing = { warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
  // Guest sign-ins are limited per address (20 per 10 minutes by default): raised, as every request here comes from 127.0.0.1.
  const gr = await startGreenroom({ guestMaxPerWindow: 1e9 });
  log(`mailbox: guest sign-ins, ${m.guestInflight} in flight`);
  const guests = expectSome('guest sign-ins', await clients[0]!.call<RateResult>('guestLoad', { url: gr.url, inflight: m.guestInflight, ...timing }, cfg.phaseTimeoutMs));
  const perRound = Math.ceil((m.stormRate * m.refreshShare * (cfg.warmupMs + cfg.durationMs)) / 1000) + 10;
  const seeded = await seed(gr, m.askSockets + perRound * cfg.rounds, 1, { access: true, refresh: true });
  const tokens = seeded.slice(0, m.askSockets).map((s) => s.accessToken!);
  const refreshTokens = seeded.slice(m.askSockets).map((s) => s.refreshToken!);
  const ask = () =>
    clients[0]!.call<RateResult>('askPace', { url: gr.url, tokens, sockets: m.askSockets, rate: m.askRate, to: 'UserStore', type: 'GetOwn', ...timing }, cfg.phaseTimeoutMs);
  const storms: Array<{ guest: AuthKind; refresh: AuthKind }> = [];
  log(`mailbox: UserStore.GetOwn at ${m.askRate}/s over ${m.askSockets} sockets, idle | during ${m.stormRate}/s of guest sign-ins and refreshes; ${cfg.rounds} × ${cfg.durationMs / 1000} s each`);
  const [idleRounds, stormRounds] = await alternate([
    { name: 'GetOwn, idle', run: ask },
    {
      name: `GetOwn during ${m.stormRate}/s auth`,
      run: async () => {
        const mine = refreshTokens.slice(storms.length * perRound, (storms.length + 1) * perRound);
        const [asked, storm] = await Promise.all([
          ask(),
          clients[1]!.call<{ guest: AuthKind; refresh: AuthKind }>('authStorm', { url: gr.url, refreshTokens: mine, rate: m.stormRate, refreshShare: m.refreshShare, ...timing }, cfg.phaseTimeoutMs),
        ]);
        storms.push(storm);
        return asked;
      },
    },
  ]);
  await gr.proc.stop();
  results.mailbox = {
    guests,
    idle: combine(idleRounds!),
    storm: combine(stormRounds!),
    auth: { guest: mergeAuth(storms.map((s) => s.guest)), refresh: mergeAuth(storms.map((s) => s.refresh)) },
  };
}

interface SessionCounts {
  live: number;
  ended: number;
  liveBytes: number;
  endedBytes: number;
  users: number;
}

/**
 * The soak: guest sign-in → refresh → logout cycles at a steady rate (open loop) for minutes, `UserStore.GetOwn`
 * asked beside them; what the store holds afterwards (on disk, and live / ended sessions as the server counts them)
 * and whether latencies drift from the first window to the last.
 */
async function soak(): Promise<void> {
  const k = cfg.soak;
  const gr = await startGreenroom({ guestMaxPerWindow: 1e9 });
  const tokens = (await seed(gr, k.askSockets, 1, { access: true })).map((s) => s.accessToken!);
  const before = { bytes: storeBytesOf(gr.dataDir), sessions: await gr.proc.call<SessionCounts>('sessions') };
  log(`soak: ${k.cycleRate} cycles/s (guest sign-in, refresh, logout) for ${k.durationMs / 60_000} min; UserStore.GetOwn at ${k.askRate}/s`);
  const timeout = k.durationMs + 120_000;
  const [asks, cycles] = await Promise.all([
    clients[0]!.call<RateResult & { windows: Array<Array<[number, number]>> }>(
      'askPace',
      { url: gr.url, tokens, sockets: k.askSockets, rate: k.askRate, to: 'UserStore', type: 'GetOwn', warmupMs: 0, durationMs: k.durationMs, bucketMs: k.windowMs },
      timeout,
    ),
    clients[1]!.call<NonNullable<Results['soak']>['cycles']>('soakCycles', { url: gr.url, rate: k.cycleRate, durationMs: k.durationMs, bucketMs: k.windowMs }, timeout),
  ]);
  const sessions = await gr.proc.call<SessionCounts>('sessions', {}, 120_000);
  const runningBytes = storeBytesOf(gr.dataDir);
  await gr.proc.stop(60_000);
  results.soak = { durationMs: k.durationMs, windowMs: k.windowMs, cycleRate: k.cycleRate, before, sessions, runningBytes, stoppedBytes: storeBytesOf(gr.dataDir), asks, cycles };
  if (cycles.completed === 0) throw new Error(`soak: no cycle completed (${cycles.firstError ?? 'no error'})`);
}

/**
 * One reconnect storm: `clients` sockets connected, the server restarted on the same port (SIGTERM, then a new
 * process), every client reconnecting with jittered backoff and asking once (`UserStore.GetOwn`; the peers answer
 * any ask). Greenroom is the built server as `npm start` runs it, on a data dir seeded beforehand (by the bench's
 * server, stopped before the built one starts on it, with the same secret).
 */
async function stormOf(kind: Peer | 'greenroom'): Promise<StormResult> {
  const rc = cfg.reconnect;
  const port = await freePort();
  let server: Started;
  let tokens: string[] | undefined;
  let restart: () => Promise<Started>;
  if (kind === 'greenroom') {
    // Seeded by the bench's server on the build (no ts-node start), which then stops and leaves the data dir.
    const dataDir = mkdtempSync(join(work, 'data-'));
    const secret = randomBytes(32).toString('hex');
    const seeder = await startBuiltBench({ port: await freePort(), dataDir, secret });
    tokens = (await seed(seeder, rc.clients, 1, { access: true })).map((s) => s.accessToken!);
    await seeder.proc.stop(30_000);
    const built = { port, dataDir, secret, maxConnections: rc.clients + 1_000 };
    server = await startBuiltServe(built);
    restart = () => startBuiltServe(built);
  } else {
    server = await startPeer(kind, port);
    restart = () => startPeer(kind, port);
  }
  const wire = kind === 'greenroom' ? {} : wireOf(kind);
  const opened = await Promise.all(
    split(rc.clients).map(([count, offset], i) =>
      clients[i]!.call<{ opened: number; errors: number; firstError?: string }>(
        'stormConnect',
        { url: server.url, tokens, count, offset, concurrency: rc.concurrency, jitterMs: rc.jitterMs, maxBackoffMs: rc.maxBackoffMs, to: 'UserStore', type: 'GetOwn', ...wire },
        cfg.phaseTimeoutMs,
      ),
    ),
  );
  const total = opened.reduce((a, o) => a + o.opened, 0);
  const name = kind === 'greenroom' ? 'Greenroom (built)' : PEER_NAMES[kind];
  if (total < rc.clients) throw new Error(`${name} storm: only ${total} of ${rc.clients} connected (${opened.find((o) => o.firstError)?.firstError})`);
  log(`${name} reconnect storm: ${total} clients connected; restarting the server`);
  const t0 = Date.now();
  await server.proc.stop(30_000);
  const down = Date.now();
  const next = await restart();
  const up = Date.now();
  const waits = await Promise.all(
    clients.map((c) =>
      c.call<{ answered: number; failed: number; unanswered: number; retries: number; lastDoneAt: number; firstError?: string }>('stormWait', { timeoutMs: rc.timeoutMs }, rc.timeoutMs + 10_000),
    ),
  );
  await Promise.all(clients.map((c) => c.call('stormClose')));
  await next.proc.stop();
  const lastDone = Math.max(...waits.map((w) => w.lastDoneAt));
  return {
    clients: total,
    totalMs: lastDone - t0,
    downMs: down - t0,
    startMs: up - down,
    serverReadyMs: next.startMs,
    reconnectMs: lastDone - up,
    answered: waits.reduce((a, w) => a + w.answered, 0),
    errors: waits.reduce((a, w) => a + w.failed + w.unanswered, 0),
    retries: waits.reduce((a, w) => a + w.retries, 0),
    ...(waits.find((w) => w.firstError) ? { firstError: waits.find((w) => w.firstError)!.firstError! } : {}),
  };
}

async function reconnect(): Promise<void> {
  results.stormRaw = await stormOf('raw');
  results.stormJson = await stormOf('json');
  results.stormIo = await stormOf('socketio');
  results.stormGreenroom = await stormOf('greenroom');
}

// ---------------------------------------------------------------- start-up

/** The commands started: what an operator runs (`greenroom serve`, built or from the sources), and the baseline. */
const STARTUP_COMMANDS = {
  raw: { name: 'raw ws', args: [join(BENCH_DIR, 'src', 'servers', 'raw-startup.mjs')], logLine: 'raw ws listening' },
  built: { name: 'greenroom (built)', args: [join(ROOT, 'packages', 'server', 'bin', 'greenroom.mjs'), 'serve'], logLine: 'greenroom listening' },
  dev: { name: 'greenroom (ts-node)', args: [join(ROOT, 'packages', 'server', 'bin', 'greenroom-dev.mjs'), 'serve'], logLine: 'greenroom listening' },
} as const;

/** Resolves with whether `GET <path>` on the port answered 200 (a refused connection or anything else: false). */
function answers200(port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * One start: spawn `node <args>` on a free port and `dataDir`, poll `GET /healthz` every pollMs until it answers 200
 * (spawn → ready), then SIGTERM and wait for the exit. The environment is this one's without any GREENROOM_ variable,
 * plus the port, the data dir and the log level (the default, `info`: the listening line is read from stdout).
 */
async function startOnce(kind: keyof typeof STARTUP_COMMANDS, dataDir: string, round: number, into: StartupSeries): Promise<void> {
  const c = STARTUP_COMMANDS[kind];
  const { pollMs, timeoutMs } = cfg.startup;
  const port = await freePort();
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_')));
  Object.assign(env, { GREENROOM_PORT: String(port), GREENROOM_HOST: '127.0.0.1', GREENROOM_DATA: dataDir, GREENROOM_LOG_LEVEL: 'info' });
  let output = '';
  let pending = '';
  let listeningMs = NaN;
  let listened: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (listened = resolve));
  const t0 = performance.now();
  const proc = Proc.spawn([...c.args], { name: c.name, cwd: ROOT, env });
  proc.child.stdout!.on('data', (chunk: Buffer) => {
    const now = performance.now();
    const text = chunk.toString();
    output = (output + text).slice(-4_000);
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (Number.isNaN(listeningMs) && line.includes(`"${c.logLine}"`)) {
        listeningMs = now - t0;
        listened();
        const url = (JSON.parse(line) as { url?: string }).url;
        if (url !== `http://127.0.0.1:${port}`) log(`  ${c.name}: listening on ${url}, not on port ${port}`);
      }
    }
  });
  proc.child.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  for (;;) {
    if (await answers200(port, '/healthz')) break;
    if (!proc.running) throw new Error(`${c.name} exited before answering /healthz: ${output.trim().split('\n').slice(-5).join(' | ')}`);
    if (performance.now() - t0 > timeoutMs) {
      await proc.stop(2_000);
      throw new Error(`${c.name}: /healthz not 200 within ${timeoutMs / 1000} s: ${output.trim().split('\n').slice(-5).join(' | ')}`);
    }
    await sleep(pollMs);
  }
  const readyMs = performance.now() - t0;
  // `/healthz` answers as soon as the HTTP server listens, before the server has finished starting (admin socket,
  // then its log line). A SIGTERM in between is honoured once start-up ends; the stop waits for the log line, so that
  // what it measures is the graceful stop of a started server.
  const seen = await Promise.race([listening.then(() => true), proc.exited.then(() => false), sleep(timeoutMs).then(() => false)]);
  if (!seen) {
    await proc.stop(2_000);
    throw new Error(`${c.name}: healthy, but no "${c.logLine}" line on stdout: ${output.trim().split('\n').slice(-5).join(' | ')}`);
  }
  const s0 = performance.now();
  await proc.stop(20_000);
  const { code, signal } = await proc.exited;
  into.readyMs.push(readyMs);
  into.listeningMs.push(listeningMs);
  into.stopMs.push(performance.now() - s0);
  if (code !== 0) into.badExits.push(`start ${round + 1}: ${signal ?? `exit ${code}`}`);
}

/** `node scripts/build.mjs` (builds what is out of date): what it did, for the report; throws if it failed. */
async function buildOutOfDate(): Promise<string> {
  const t = Date.now();
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`node scripts/build.mjs failed (exit ${code}): ${output.trim().split('\n').slice(-10).join(' | ')}`);
  return output.trim() === '' ? 'nothing was out of date' : `rebuilt what was out of date in ${((Date.now() - t) / 1000).toFixed(1)} s`;
}

async function startup(): Promise<void> {
  const { starts, users, sessionsPerUser } = cfg.startup;
  const build = built ?? 'not run';
  // The seeded store, made once: a server seeds it and stops; its secret is put where a server keeps its own. Every
  // start on it gets a fresh copy (a start writes to its data dir: lock, admin socket, maybe the store).
  log(`startup: seeding a store of ${users} users and ${users * sessionsPerUser} sessions`);
  const seedStarted = Date.now();
  const seedDir = join(work, 'startup-store');
  const secret = randomBytes(32).toString('hex');
  const seeder = await startGreenroom({ dataDir: seedDir, secret });
  await seed(seeder, users, sessionsPerUser, {});
  await seeder.proc.stop(30_000);
  writeFileSync(join(seedDir, 'secret'), secret, { mode: 0o600 });
  const storeBytes = statSync(join(seedDir, 'greenroom.json')).size;
  log(`startup: store of ${(storeBytes / 2 ** 20).toFixed(1)} MiB seeded in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s; ${starts} rounds of four starts`);
  const empty = (): StartupSeries => ({ readyMs: [], listeningMs: [], stopMs: [], badExits: [] });
  const series = { raw: empty(), built: empty(), dev: empty(), seeded: empty() };
  // Round by round, the four in turn (the order rotating), so a machine that gets busier or quieter moves them alike.
  const order = ['raw', 'built', 'dev', 'seeded'] as const;
  for (let r = 0; r < starts; r++) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(k + r) % order.length]!;
      const dataDir = mkdtempSync(join(work, `startup-${which}-`));
      if (which === 'seeded') cpSync(seedDir, dataDir, { recursive: true });
      await startOnce(which === 'seeded' ? 'built' : which, dataDir, r, series[which]);
      rmSync(dataDir, { recursive: true, force: true });
    }
    log(`  round ${r + 1}/${starts}: raw ${int(series.raw.readyMs[r]!)} ms, built ${int(series.built.readyMs[r]!)} ms, ts-node ${int(series.dev.readyMs[r]!)} ms, built + store ${int(series.seeded.readyMs[r]!)} ms`);
  }
  results.startup = { starts, pollMs: cfg.startup.pollMs, users, sessions: users * sessionsPerUser, storeBytes, build, ...series };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n >= 1_000 ? `${(n / 1000).toFixed(2)} s` : `${int(n)} ms`);

// ---------------------------------------------------------------- several nodes (Redis)

const redisUrl = args.redis;
/** Every Redis key this run writes starts with this (then a part of the phase): removed at the end of the run. */
const REDIS_PREFIX = `grbench:${randomBytes(4).toString('hex')}:`;

/** What puts a Greenroom server on the Redis store, sharing `part` of this run's keys with every server given it. */
function redisEnv(part: string): Record<string, string> {
  return { GREENROOM_STORE: 'redis', GREENROOM_REDIS_URL: redisUrl, GREENROOM_REDIS_PREFIX: `${REDIS_PREFIX}${part}:` };
}

/**
 * The throughput phase's load over every client process at once, each with its share of the sockets (and of the
 * tokens), process i on servers[i mod n]; one result, with the servers' CPU time.
 */
function loadOver(servers: Started[], tokens: string[] | undefined, ask: { to: string; type: string }): () => Promise<RateResult> {
  const p = { inflight: cfg.load.inflight, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs, ...ask };
  return () =>
    withCpu(servers, async () => {
      const parts = await Promise.all(
        split(cfg.load.sockets).map(([count, offset], i) =>
          clients[i]!.call<RateResult>('load', { url: servers[i % servers.length]!.url, sockets: count, ...(tokens ? { tokens: tokens.slice(offset, offset + count) } : {}), ...p }, cfg.phaseTimeoutMs),
        ),
      );
      return { ...summed(parts), seconds: parts[0]!.seconds, rate: parts.reduce((a, x) => a + x.rate, 0) };
    });
}

/**
 * Several nodes on one Redis (SPEC §8). Every Greenroom node is the built server (servers/greenroom-built.mjs) with its
 * own port and data dir; all share one secret (each verifies the tokens the others signed), and those of one setup a
 * key prefix. In one run: asks/s beside raw ws and a lowdb node; revocation latency across two nodes beside one; the
 * store at scale, Redis beside lowdb on the same records.
 */
async function cluster(): Promise<void> {
  const k = cfg.cluster;
  if (clients.length < 2) throw new Error('cluster: needs two client processes, one for each node');
  let version: string;
  try {
    version = await redisVersion(redisUrl);
  } catch (err) {
    // As the Redis tests skip where there is no Redis, so does the CI configuration; a measuring run fails.
    if (!args.ci) throw err;
    log(`cluster: skipped: ${(err as Error).message}`);
    return;
  }
  const result: ClusterResult = { redisVersion: version, revocation: [], scale: [] };
  results.cluster = result;
  log(`cluster: Redis ${version} at ${redisUrl}, this run's keys under ${REDIS_PREFIX}`);
  const secret = randomBytes(32).toString('hex');
  // Asks are not rate limited: the phase measures the nodes, not the per-connection limiter.
  const node = async (env?: Record<string, string>) => startBuiltBench({ port: await freePort(), dataDir: mkdtempSync(join(work, 'data-')), secret, askRate: 1e9, askBurst: 1e9, ...(env ? { env } : {}) });
  const nodes = redisEnv('nodes');
  // The first size's seeding server starts beside the nodes (on keys of its own): its start, through ts-node, is the longest.
  const [raw, lowdbNode, a, b, seeder] = await Promise.all([
    startPeer('raw'),
    node(),
    node(nodes),
    node(nodes),
    k.users.length > 0 ? startGreenroom({ secret, env: scaleEnv(k.users[0]!) }) : undefined,
  ]);

  // Asks: the raw ws echo, then each ask on each setup; the two nodes' sockets are one client process each.
  const [lowdbTokens, redisTokens] = await Promise.all([lowdbNode, a].map(async (s) => (await seed(s, cfg.load.sockets, 1, { access: true })).map((x) => x.accessToken!)));
  const setups: Array<[ClusterSetup, Started[], string[]]> = [
    ['lowdb, 1 node', [lowdbNode], lowdbTokens!],
    ['Redis, 1 node', [a], redisTokens!],
    ['Redis, 2 nodes', [a, b], redisTokens!],
  ];
  const sides = [
    { to: 'Echo', type: 'Echo' },
    { to: 'UserStore', type: 'GetOwn' },
  ].flatMap((ask) => setups.map(([setup, servers, tokens]) => ({ ask: `${ask.to}.${ask.type}`, setup, name: `${ask.to}.${ask.type}, ${setup}`, run: loadOver(servers, tokens, ask) })));
  log(`cluster: asks, ${cfg.load.sockets} sockets × ${cfg.load.inflight} in flight over ${clients.length} client processes, ${cfg.rounds} × ${cfg.durationMs / 1000} s each side`);
  const [rawRounds, ...sideRounds] = await alternate([{ name: 'raw ws echo', run: loadOver([raw], undefined, { to: 'Echo', type: 'Echo' }) }, ...sides]);
  result.asks = { raw: combine(rawRounds!), sides: sides.map((x, i) => ({ ask: x.ask, setup: x.setup, result: combine(sideRounds[i]!) })) };

  // Revocations: asked by an admin on the first server, the session's socket held by the second. B stops before the
  // one-node case, so that A is alone on its keys then (a revocation's broadcast waits for every node on them).
  const revoking: Array<[ClusterSetup, Started, Started]> = [
    ['lowdb, 1 node', lowdbNode, lowdbNode],
    ['Redis, 2 nodes', a, b],
    ['Redis, 1 node', a, a],
  ];
  for (const [setup, asked, holder] of revoking) {
    if (setup === 'Redis, 1 node') await b.proc.stop();
    const n = k.revocationWarmup + k.revocations;
    const [admin] = await seed(asked, 1, 1, { access: true, role: 'admin' });
    const sessions = (await seed(holder, n, 1, { access: true })).map((s) => ({ sid: s.sid, token: s.accessToken! }));
    log(`cluster: revocations, ${setup}: ${n} sessions revoked one at a time, the first ${k.revocationWarmup} untimed`);
    const r = await clients[0]!.call<RevocationResult>(
      'revokeLatency',
      { adminUrl: asked.url, adminToken: admin!.accessToken, holderUrl: holder.url, sessions, warmup: k.revocationWarmup, concurrency: 50, timeoutMs: 5_000 },
      cfg.phaseTimeoutMs,
    );
    if (r.errors === r.samples) throw new Error(`cluster: no revocation on ${setup} was seen to close its socket (${r.firstError ?? 'no error'})`);
    result.revocation.push({ setup, result: r });
  }
  await Promise.all([raw, lowdbNode, a, b].map((s) => s.proc.stop()));
  await dropKeys(redisUrl, nodes.GREENROOM_REDIS_PREFIX!);

  for (const [i, users] of k.users.entries()) await clusterScale(result, users, secret, i === 0 ? seeder : undefined);
  const failed = result.scale.filter((z) => z.failed);
  if (failed.length === result.scale.length) throw new Error(`cluster: every size of the store at scale failed (first: ${failed[0]?.failed})`);
}

/** The keys of the store at scale with `users` users. */
const scaleEnv = (users: number) => redisEnv(`u${users}`);

/**
 * The store at scale on one node: the same records (`users` users, `lowdb.sessionsPerUser` sessions each) written in
 * one pass into Redis, through the store's own write API in large parallel batches, and into a lowdb store file, by
 * the bench's server on those Redis keys (`seeder`, started here unless given; its TokenService mints the tokens);
 * then a lowdb node on the file and a Redis node, each given handshakes with the sampled sessions' access tokens, then
 * refreshes with their refresh tokens.
 */
async function clusterScale(result: ClusterResult, users: number, secret: string, seeder?: Started): Promise<void> {
  const k = cfg.cluster;
  const z: ClusterSize = { users, sessions: users * cfg.lowdb.sessionsPerUser };
  result.scale.push(z);
  const env = scaleEnv(users);
  const dataDir = mkdtempSync(join(work, `cluster-lowdb-${users}-`));
  const started: Started[] = [];
  try {
    log(`cluster: seeding ${int(users)} users and ${int(z.sessions)} sessions into Redis and a lowdb store file`);
    const writer = seeder ?? (await startGreenroom({ secret, env }));
    started.push(writer);
    const seeded = await writer.proc.call<SeedStoreResult>(
      'writeSeedStore',
      { file: join(dataDir, 'greenroom.json'), store: true, users, sessionsPerUser: cfg.lowdb.sessionsPerUser, sample: cfg.lowdb.sample, access: true },
      k.timeoutMs,
    );
    await writer.proc.stop();
    Object.assign(z, { sample: seeded.refreshTokens.length, seedMs: seeded.ms, seedBytes: seeded.bytes });
    log(`cluster: seeded in ${ms(seeded.ms)} (file ${(seeded.bytes / 2 ** 20).toFixed(1)} MiB); starting a lowdb node on the file and a Redis node`);
    const starting = [
      startBuiltBench({ port: await freePort(), dataDir, secret }),
      startBuiltBench({ port: await freePort(), dataDir: mkdtempSync(join(work, 'data-')), secret, env }),
    ] as const;
    // Both settled before either is used, so that one that started is stopped below even if the other failed.
    for (const s of await Promise.allSettled(starting)) if (s.status === 'fulfilled') started.push(s.value);
    const [lowdbNode, redisNode] = await Promise.all(starting);
    z.lowdb = { startMs: lowdbNode.startMs };
    z.redis = { startMs: redisNode.startMs };
    const on: Array<[string, Started, ScaleSide]> = [
      ['lowdb', lowdbNode, z.lowdb],
      ['Redis', redisNode, z.redis],
    ];
    const timing = { warmupMs: k.scaleWarmupMs, durationMs: k.scaleDurationMs };
    for (const [store, node, side] of on) {
      log(`cluster: ${int(users)} users, ${store}: handshakes, ${cfg.handshake.inflight} in flight`);
      const r = await clients[0]!.call<RateResult>('handshakes', { url: node.url, tokens: seeded.accessTokens, inflight: cfg.handshake.inflight, ...timing }, cfg.phaseTimeoutMs);
      side.handshakes = expectSome(`handshakes on ${store}`, r);
    }
    for (const [store, node, side] of on) {
      log(`cluster: ${int(users)} users, ${store}: refreshes, ${cfg.lowdb.inflight} in flight`);
      const r = await clients[0]!.call<NonNullable<ScaleSide['refresh']>>('refreshLoad', { url: node.url, tokens: seeded.refreshTokens, inflight: cfg.lowdb.inflight, ...timing }, cfg.phaseTimeoutMs);
      side.refresh = expectSome(`refreshes on ${store}`, r);
    }
  } catch (err) {
    z.failed = (err as Error).message.split('\n')[0];
    log(`cluster: ${int(users)} users FAILED: ${z.failed}`);
  } finally {
    await Promise.all(started.map((s) => s.proc.stop(30_000)));
    rmSync(dataDir, { recursive: true, force: true });
    await dropKeys(redisUrl, env.GREENROOM_REDIS_PREFIX!);
  }
}

const RUNNERS: Record<Phase, () => Promise<void>> = { handshakes, throughput, rooms, memory, refresh: refreshStorm, lowdb, mailbox, reconnect, startup, soak, cluster };

/** Phases bounded otherwise than by `phaseTimeoutMs`: the store at scale (alone or beside Redis), and the soak (its duration and then some). */
const PHASE_TIMEOUT_MS: Partial<Record<Phase, number>> = { lowdb: cfg.lowdb.timeoutMs, cluster: cfg.cluster.timeoutMs, soak: cfg.soak.durationMs + cfg.phaseTimeoutMs };

// ---------------------------------------------------------------- main

function bounded(phase: string, p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${phase}: stopped after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Removes whatever this run left under its Redis prefix (once its servers are gone), if it got as far as Redis. */
async function dropRunKeys(): Promise<void> {
  if (!results.cluster) return;
  try {
    const n = await dropKeys(redisUrl, REDIS_PREFIX);
    if (n > 0) log(`removed ${n} Redis keys left under ${REDIS_PREFIX}`);
  } catch (err) {
    log(`could not remove the Redis keys under ${REDIS_PREFIX}: ${(err as Error).message}`);
  }
}

/** Leaves at once (a signal, or the whole run out of time): every process killed, the temp dir and the Redis keys removed. */
function abandon(code: number): never {
  killAll();
  rmSync(work, { recursive: true, force: true });
  // In a process of its own, waited for: nothing else of the run may go on meanwhile. Bounded: leaving must not hang.
  if (results.cluster) {
    spawnSync(process.execPath, ['--import', join(BENCH_DIR, 'register.mjs'), join(BENCH_DIR, 'src', 'redis-keys.ts'), redisUrl, REDIS_PREFIX], { stdio: 'inherit', timeout: 15_000 });
  }
  process.exit(code);
}

process.on('exit', () => killAll());
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => abandon(130));

const watchdog = setTimeout(() => {
  log(`the whole run is past ${cfg.totalTimeoutMs / 1000} s: stopping`);
  abandon(1);
}, cfg.totalTimeoutMs);
watchdog.unref();

log(`Greenroom bench (${cfg.name}${args.profile ? ', profiled' : ''}): ${only.join(', ')}; ${machine.cpu} × ${machine.cores}, node ${machine.node}`);
/** What `node scripts/build.mjs` did before the phases that run the build (memory, lowdb, reconnect, startup, cluster). */
let built: string | undefined;
if (only.some((p) => p === 'memory' || p === 'lowdb' || p === 'reconnect' || p === 'startup' || p === 'cluster')) {
  // Before the phases, outside their time bounds: on a fresh checkout the build takes longer than a CI phase may.
  log('node scripts/build.mjs (builds what is out of date)');
  built = await buildOutOfDate();
  log(`build: ${built}`);
}
await startClients(cfg.clientProcs);
for (const phase of only) {
  const t = Date.now();
  log(`── ${phase}`);
  try {
    await bounded(phase, RUNNERS[phase](), PHASE_TIMEOUT_MS[phase] ?? cfg.phaseTimeoutMs);
    log(`── ${phase} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } catch (err) {
    failures.push({ phase, error: (err as Error).message });
    log(`── ${phase} FAILED: ${(err as Error).message}`);
    // Whatever the phase left running goes; the clients are restarted clean.
    killAll();
    await startClients(cfg.clientProcs);
  }
}
for (const c of clients) await c.stop(5_000);
// A phase that failed part-way leaves keys behind.
await dropRunKeys();
results.failures = failures;
results.seconds = (Date.now() - runStarted) / 1000;

const rows = rowsOf(results);
printTable(rows, results);
const command = `pnpm bench${argv.length ? ` ${argv.join(' ')}` : ''}`;
console.log(`${runMarkdown({ machine, command, results, only })}\n`);
if (!args.ci && !args['no-write']) {
  const out = resolve(args.out ?? join(BENCH_DIR, '..', '..', 'docs', 'benchmarks.md'));
  // The results table only from a run of every phase (a partial run prints its table and leaves the file's).
  // The several-nodes section from any run of that phase, unless it failed (a failed run leaves the last good one).
  const writeCluster = results.cluster !== undefined && !failures.some((f) => f.phase === 'cluster');
  writeDocs(out, { machine, command, rows, results, profiles, writeResults: !args.profile && DEFAULT_PHASES.every((p) => only.includes(p)), writeCluster, only });
  log(`wrote ${out}`);
}
rmSync(work, { recursive: true, force: true });
if (existsProfiles()) log(`profiles kept in ${profileDir} (open them in Chrome DevTools › Performance)`);
log(failures.length === 0 ? `done in ${results.seconds.toFixed(0)} s` : `${failures.length} phase(s) failed: ${failures.map((f) => f.phase).join(', ')}`);
process.exit(failures.length === 0 ? 0 : 1);

function existsProfiles(): boolean {
  try {
    return readdirSync(profileDir).length > 0;
  } catch {
    return false;
  }
}
