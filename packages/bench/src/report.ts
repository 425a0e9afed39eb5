/**
 * The bench's output: one table (printed, and written into docs/benchmarks.md between markers, so the hand-written
 * analysis around it survives a rerun) with each Greenroom figure, its baseline from the same run, the ratio, the
 * target and whether it was met.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';
import type { RateResult, RevocationResult } from './client.js';
import type { BenchConfig } from './config.js';
import { profileMarkdown, type ProfileSummary } from './profile.js';
import { Histogram, median } from './stats.js';

export interface MemResult {
  connections: number;
  rssPerConn: number;
  heapPerConn: number;
  externalPerConn: number;
  rssBefore: number;
  rssAfter: number;
  openSeconds: number;
}

export interface StormResult {
  clients: number;
  /** From the SIGTERM to the last client's answered ask. */
  totalMs: number;
  /** SIGTERM → the old process exited. */
  downMs: number;
  /** Exited → the new process listening. */
  startMs: number;
  /** Listening → every client answered. */
  reconnectMs: number;
  /** The new server process's own count from its start to listening (the rest of startMs is spawning it). */
  serverReadyMs: number;
  answered: number;
  errors: number;
  retries: number;
  firstError?: string;
}

/** One server's starts in the start-up phase, in start order (every start's own figures). */
export interface StartupSeries {
  /** Spawn → the first `GET /healthz` answered 200. */
  readyMs: number[];
  /**
   * Spawn → its listening log line read from its stdout. Greenroom logs it when its start is complete (after the
   * admin socket), so it can come after the first healthy answer; the SIGTERM is sent only once it has been read.
   */
  listeningMs: number[];
  /** SIGTERM → exited. */
  stopMs: number[];
  /** Starts whose process did not exit with 0 after the SIGTERM: "start 3: exit 1". */
  badExits: string[];
}

export interface StartupResult {
  starts: number;
  pollMs: number;
  users: number;
  sessions: number;
  /** The seeded store file's size. */
  storeBytes: number;
  /** What `node scripts/build.mjs` did before the phase. */
  build: string;
  raw: StartupSeries;
  built: StartupSeries;
  dev: StartupSeries;
  seeded: StartupSeries;
}

/** One size of the store at scale. */
export interface LowdbSize {
  sessions: number;
  users: number;
  /** The seed store file: written in, and its size. */
  seedMs: number;
  seedBytes: number;
  /** Distinct sessions whose refresh tokens the load presents. */
  sample: number;
  /** Spawn → `GET /readyz` 200 of the built server on this store. */
  startMs?: number;
  /** SIGTERM → exit after the load. */
  stopMs?: number;
  /** After the load and the stop: the data dir's files, the secret left out. */
  storeBytes?: number;
  heapPerSession?: number;
  rssPerSession?: number;
  refresh?: RateResult & { statuses: Record<string, number> };
  /** Store flushes during the load (warm-up included); null when the store does not count them. */
  flushes?: number | null;
  failed?: string;
}

export interface LowdbScale {
  inflight: number;
  sessionsPerUser: number;
  /** The built server on an empty store. */
  emptyHeap: number;
  emptyRss: number;
  emptyStartMs: number;
  sizes: LowdbSize[];
}

export interface AuthKind {
  count: number;
  errors: number;
  latency: Array<[number, number]>;
  statuses: Record<string, number>;
  firstError?: string;
}

export interface MailboxResult {
  guests: RateResult;
  /** UserStore.GetOwn asked at a steady rate, alone and during the auth storm. */
  idle: RateResult;
  storm: RateResult;
  auth: { guest: AuthKind; refresh: AuthKind };
}

export interface SoakResult {
  durationMs: number;
  windowMs: number;
  cycleRate: number;
  before: { bytes: number; sessions: SessionCounts };
  sessions: SessionCounts;
  /** The data dir's files (the secret left out) at the end of the load, and after the server stopped. */
  runningBytes: number;
  stoppedBytes: number;
  asks: RateResult & { windows: Array<Array<[number, number]>> };
  cycles: { cycles: number; completed: number; errors: number; statuses: Record<string, number>; windows: Array<Array<[number, number]>>; firstError?: string };
}

export interface SessionCounts {
  live: number;
  ended: number;
  /** JSON bytes of the records (`"<sid>":<record>`). */
  liveBytes: number;
  endedBytes: number;
  users: number;
}

/** Where the several-nodes phase runs a side: the store, and how many nodes share it. */
export type ClusterSetup = 'lowdb, 1 node' | 'Redis, 1 node' | 'Redis, 2 nodes';

/** The store at scale on one node of one store. */
export interface ScaleSide {
  /** Spawn → `GET /readyz` 200. */
  startMs: number;
  handshakes?: RateResult;
  refresh?: RateResult & { statuses: Record<string, number> };
}

/** One size of the store at scale, the same records in lowdb and in Redis. */
export interface ClusterSize {
  users: number;
  sessions: number;
  /** Distinct sessions whose tokens the loads present. */
  sample?: number;
  /** Seeding both stores in one pass (the lowdb file written and the Redis writes made together), and the file's size. */
  seedMs?: number;
  seedBytes?: number;
  lowdb?: ScaleSide;
  redis?: ScaleSide;
  failed?: string;
}

/** Several nodes on one Redis (SPEC §8). */
export interface ClusterResult {
  redisVersion: string;
  asks?: { raw: RateResult; sides: Array<{ ask: string; setup: ClusterSetup; result: RateResult }> };
  /** Revoke asked on one node, the socket on the same node or (Redis, 2 nodes) on the other. */
  revocation: Array<{ setup: ClusterSetup; result: RevocationResult }>;
  scale: ClusterSize[];
}

export interface Results {
  config: BenchConfig;
  profiled: boolean;
  seconds?: number;
  failures?: Array<{ phase: string; error: string }>;
  rawHandshakes?: RateResult;
  jsonHandshakes?: RateResult;
  ioHandshakes?: RateResult;
  grHandshakes?: RateResult;
  rawEcho?: RateResult;
  jsonEcho?: RateResult;
  /** Socket.IO: an `ask` event answered through its acknowledgement. */
  ioEcho?: RateResult;
  /** Greenroom asks to Echo.Echo (a trivial app actor). */
  asks?: RateResult;
  /** Greenroom asks to UserStore.GetOwn (a built-in actor reading the caller's user from the store). */
  getOwn?: RateResult;
  /** Rooms phase: Echo.Echo asks (the baseline), chat posts to one room, and to `config.rooms.rooms` rooms. */
  roomsEcho?: RateResult;
  roomsOne?: RateResult;
  roomsMany?: RateResult;
  memRaw?: MemResult;
  memJson?: MemResult;
  memIo?: MemResult;
  memGreenroom?: MemResult;
  refreshStorm?: { ms: number; statuses: Record<string, number>; distinctPairs: number; concurrency: number; generation: number; rotations: number };
  lowdbScale?: LowdbScale;
  mailbox?: MailboxResult;
  soak?: SoakResult;
  stormRaw?: StormResult;
  stormJson?: StormResult;
  stormIo?: StormResult;
  stormGreenroom?: StormResult;
  startup?: StartupResult;
  cluster?: ClusterResult;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  loadavg: string;
  date: string;
}

export function machineInfo(): Machine {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${osType()} ${release()}`,
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' / '),
    date: new Date().toISOString(),
  };
}

export interface Row {
  metric: string;
  greenroom: string;
  baseline: string;
  ratio: string;
  target: string;
  met: string;
  /** How far from the target, when missed. */
  gap?: string;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const ms = (n: number) => (n >= 1_000 ? `${(n / 1000).toFixed(2)} s` : `${int(n)} ms`);
/** p50 / p99 of latencies (sparse, as the clients send them). */
const p50p99 = (latency: Array<[number, number]>) => {
  const h = Histogram.fromSparse(latency);
  return `${h.quantile(0.5).toFixed(2)} / ${h.quantile(0.99).toFixed(2)} ms`;
};
const lat = (r: RateResult) => p50p99(r.latency);

/** Greenroom ÷ baseline: the median of the per-round ratios when both ran in rounds, else the ratio of the rates. */
function rateRatio(g: RateResult | undefined, b: RateResult | undefined): number {
  if (!g || !b) return NaN;
  if (g.rounds && b.rounds && g.rounds.length === b.rounds.length && g.rounds.length > 1) return median(g.rounds.map((x, i) => x / b.rounds![i]!));
  return g.rate / b.rate;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const us = (n: number) => `${n.toFixed(1)} µs`;

/** The server's CPU time per answered ask in the measured window (µs); NaN when it was not read. */
function cpuPerAsk(x: RateResult | undefined): number {
  return x?.cpuUs === undefined || x.count === 0 ? NaN : x.cpuUs / x.count;
}

/** A ratio as shown: two decimals, or two significant digits below 0.1 (a chat post against an Echo ask: 0.0096×). */
const times = (q: number) => `${Number.isFinite(q) && q < 0.1 ? q.toPrecision(2) : q.toFixed(2)}×`;

/** A row where less is better (memory, time): Greenroom's figure against the baseline's; undefined = that side failed. */
function lessIsBetter(metric: string, g: number | undefined, b: number | undefined, show: (n: number) => string, target: string, limit: number): Row {
  const ratio = (g ?? NaN) / (b ?? NaN);
  return {
    metric,
    greenroom: g === undefined ? 'failed' : show(g),
    baseline: b === undefined ? 'failed' : show(b),
    ratio: `${ratio.toFixed(2)}×`,
    target,
    ...judged(ratio, limit, false),
  };
}

function judged(ratio: number, target: number, atLeast: boolean): { met: string; gap?: string } {
  if (!Number.isFinite(ratio)) return { met: '—' };
  const met = atLeast ? ratio >= target : ratio <= target;
  if (met) return { met: '✓' };
  const gap = atLeast ? `${((1 - ratio / target) * 100).toFixed(0)}% short` : `${((ratio / target - 1) * 100).toFixed(0)}% over`;
  return { met: '✗', gap };
}

export function rowsOf(r: Results): Row[] {
  const rows: Row[] = [];
  const c = r.config;
  if (r.grHandshakes || r.rawHandshakes) {
    const g = r.grHandshakes?.rate ?? NaN;
    const b = r.rawHandshakes?.rate ?? NaN;
    const q = rateRatio(r.grHandshakes, r.rawHandshakes);
    rows.push({
      metric: `Handshakes/s (bearer, awaited registration; ${c.handshake.inflight} in flight) vs raw ws`,
      greenroom: r.grHandshakes ? int(g) : 'failed',
      baseline: r.rawHandshakes ? int(b) : 'failed',
      ratio: `${q.toFixed(2)}×`,
      target: '≥ 0.8×',
      ...judged(q, 0.8, true),
    });
  }
  if (r.asks || r.jsonEcho) {
    const g = r.asks?.rate ?? NaN;
    const b = r.jsonEcho?.rate ?? NaN;
    const q = rateRatio(r.asks, r.jsonEcho);
    rows.push({
      metric: `Asks/s (${c.load.sockets} sockets × ${c.load.inflight} in flight) vs ws + JSON echo`,
      greenroom: r.asks ? int(g) : 'failed',
      baseline: r.jsonEcho ? int(b) : 'failed',
      ratio: `${q.toFixed(2)}×`,
      target: '≥ 0.6×',
      ...judged(q, 0.6, true),
    });
    rows.push({
      metric: 'Ask latency p50 / p99 vs ws + JSON echo',
      greenroom: r.asks ? lat(r.asks) : 'failed',
      baseline: r.jsonEcho ? lat(r.jsonEcho) : 'failed',
      ratio: '',
      target: '',
      met: '—',
    });
    const e = r.rawEcho?.rate ?? NaN;
    rows.push({
      metric: 'Asks/s vs raw ws echo (no JSON)',
      greenroom: r.asks ? int(g) : 'failed',
      baseline: r.rawEcho ? int(e) : 'failed',
      ratio: `${rateRatio(r.asks, r.rawEcho).toFixed(2)}×`,
      target: '',
      met: '—',
    });    if (r.getOwn) {
      const q2 = rateRatio(r.getOwn, r.jsonEcho);
      rows.push({
        metric: 'Asks/s to UserStore.GetOwn (a built-in actor, reads the store) vs ws + JSON echo',
        greenroom: int(r.getOwn.rate),
        baseline: r.jsonEcho ? int(b) : 'failed',
        ratio: `${q2.toFixed(2)}×`,
        target: '',
        met: '—',
      });
    }
    for (const [what, x] of [['Echo.Echo', r.asks], ['UserStore.GetOwn', r.getOwn]] as const) {
      if (!x) continue;
      rows.push({ ...lessIsBetter(`Server CPU per ask, ${what}, vs per ws + JSON echo`, cpuPerAsk(x), cpuPerAsk(r.jsonEcho), us, '', Infinity), met: '—' });
    }
  }
  if (r.roomsEcho || r.roomsOne || r.roomsMany) {
    const { sockets, inflight, rooms } = c.rooms;
    const posts = (what: string, x: RateResult | undefined, b: RateResult | undefined, baseline: string): Row => ({
      metric: `Chat posts/s, ${what} (${sockets} sockets × ${inflight} in flight, each subscribed to its room) vs ${baseline}`,
      greenroom: x ? int(x.rate) : 'failed',
      baseline: b ? int(b.rate) : 'failed',
      ratio: times(rateRatio(x, b)),
      target: '',
      met: '—',
    });
    const latency = (what: string, x: RateResult | undefined): Row => ({
      metric: `Chat post latency p50 / p99, ${what}, vs Echo asks`,
      greenroom: x ? lat(x) : 'failed',
      baseline: r.roomsEcho ? lat(r.roomsEcho) : 'failed',
      ratio: '',
      target: '',
      met: '—',
    });
    rows.push(posts('1 room', r.roomsOne, r.roomsEcho, 'Echo asks'));
    rows.push(latency('1 room', r.roomsOne));
    rows.push(posts(`${rooms} rooms`, r.roomsMany, r.roomsEcho, 'Echo asks'));
    rows.push(latency(`${rooms} rooms`, r.roomsMany));
    rows.push({ ...posts(`${rooms} rooms`, r.roomsMany, r.roomsOne, '1 room'), metric: `Chat posts/s, ${rooms} rooms vs 1 room` });
  }
  if (r.memGreenroom || r.memRaw) {
    // RSS is the target; heap is shown beside it (in brackets: not a target of its own).
    for (const [what, key, target] of [['RSS', 'rssPerConn', '≤ 1.5×'], ['heap', 'heapPerConn', '(≤ 1.5×)']] as const) {
      rows.push(lessIsBetter(`Server ${what} per idle connection at ${int(c.memory.connections)} vs raw ws`, r.memGreenroom?.[key], r.memRaw?.[key], kb, target, 1.5));
    }
  }
  if (r.stormGreenroom || r.stormRaw) {
    const metric = `Reconnect storm: ${int(c.reconnect.clients)} clients, restart → all answered one ask, built server vs raw ws`;
    rows.push(lessIsBetter(metric, r.stormGreenroom?.totalMs, r.stormRaw?.totalMs, ms, '≤ 2×', 2));
    const partly = '… of which: new server listening → all answered (start-up left out)';
    rows.push(lessIsBetter(partly, r.stormGreenroom?.reconnectMs, r.stormRaw?.reconnectMs, ms, '(≤ 2×)', 2));
    const ge = r.stormGreenroom?.errors ?? NaN;
    rows.push({
      metric: 'Reconnect storm errors',
      greenroom: r.stormGreenroom ? String(ge) : 'failed',
      baseline: r.stormRaw ? String(r.stormRaw.errors) : 'failed',
      ratio: '',
      target: '0',
      met: Number.isFinite(ge) ? (ge === 0 ? '✓' : '✗') : '—',
    });
  }
  if (r.refreshStorm) {
    const s = r.refreshStorm;
    rows.push({ metric: `Refresh storm: ${s.concurrency} concurrent refreshes of one token, time`, greenroom: ms(s.ms), baseline: '—', ratio: '', target: '', met: '—' });
    rows.push({
      metric: 'Refresh storm: rotations (the session\'s generation, read from the server)',
      greenroom: String(s.generation),
      baseline: '—',
      ratio: '',
      target: '1',
      met: s.generation === 1 ? '✓' : '✗',
    });
  }
  if (r.lowdbScale) {
    const l = r.lowdbScale;
    for (const z of l.sizes) {
      rows.push({
        metric: `lowdb refreshes/s of distinct sessions, store of ${int(z.sessions)} sessions (${l.inflight} in flight)`,
        greenroom: z.refresh ? int(z.refresh.rate) : 'failed',
        baseline: '—',
        ratio: '',
        // The target was set for a store of 20,000 sessions.
        target: z.sessions <= 20_000 ? '≥ 1,000/s' : '',
        ...(z.sessions <= 20_000 ? judged((z.refresh?.rate ?? NaN) / 1000, 1, true) : { met: '—' }),
      });
    }
  }
  if (r.mailbox) {
    const m = r.mailbox;
    rows.push({ metric: `Guest sign-ins/s (POST /auth/guest, ${c.mailbox.guestInflight} in flight)`, greenroom: int(m.guests.rate), baseline: '—', ratio: '', target: '', met: '—' });
    const idle = Histogram.fromSparse(m.idle.latency).quantile(0.99);
    const storm = Histogram.fromSparse(m.storm.latency).quantile(0.99);
    const metric = `UserStore.GetOwn p99 (${c.mailbox.askRate}/s) during ${c.mailbox.stormRate}/s guest sign-ins + refreshes vs idle`;
    rows.push({ ...lessIsBetter(metric, storm, idle, (n) => `${n.toFixed(2)} ms`, '', Infinity), met: '—' });
  }
  if (r.startup) {
    const s = r.startup;
    const b = median(s.raw.readyMs);
    const span = (x: StartupSeries) => `${ms(median(x.readyMs))} (${ms(Math.min(...x.readyMs))}–${ms(Math.max(...x.readyMs))})`;
    const row = (what: string, x: StartupSeries): Row => {
      const q = median(x.readyMs) / b;
      return { metric: `Start-up, spawn → first GET /healthz 200 (median of ${s.starts}, min–max): ${what}, vs raw ws`, greenroom: span(x), baseline: span(s.raw), ratio: `${q.toFixed(2)}×`, target: '', met: '—' };
    };
    rows.push(row('built server (`bin/greenroom.mjs`), empty data dir', s.built));
    rows.push(row('ts-node server (`bin/greenroom-dev.mjs`), empty data dir', s.dev));
    rows.push(row(`built server, store of ${int(s.users)} users and ${int(s.sessions)} sessions (${(s.storeBytes / 2 ** 20).toFixed(1)} MiB)`, s.seeded));
  }
  return rows;
}

/**
 * Greenroom beside the three peers, measure by measure (each from the same run and load): raw ws, ws + JSON,
 * Socket.IO (WebSocket transport, ack echo), and the ratio of Greenroom to Socket.IO. Empty when no peer phase ran.
 */
export function peersMarkdown(r: Results): string {
  const lines: string[] = [];
  const row = (what: string, cells: Array<string | undefined>, ratio: string) => lines.push(`| ${what} | ${cells.map((c) => c ?? '—').join(' | ')} | ${ratio} |`);
  const rate = (x: RateResult | undefined) => (x ? int(x.rate) : undefined);
  const l = (x: RateResult | undefined) => (x ? lat(x) : undefined);
  const q = (g: number | undefined, b: number | undefined) => (g === undefined || b === undefined ? '' : times(g / b));
  if (r.grHandshakes || r.ioHandshakes) {
    row('Handshakes/s', [rate(r.rawHandshakes), rate(r.jsonHandshakes), rate(r.ioHandshakes), rate(r.grHandshakes)], times(rateRatio(r.grHandshakes, r.ioHandshakes)));
    row('Handshake latency p50 / p99', [l(r.rawHandshakes), l(r.jsonHandshakes), l(r.ioHandshakes), l(r.grHandshakes)], '');
  }
  if (r.asks || r.ioEcho) {
    row('Asks/s (Greenroom: Echo.Echo)', [rate(r.rawEcho), rate(r.jsonEcho), rate(r.ioEcho), rate(r.asks)], times(rateRatio(r.asks, r.ioEcho)));
    row('Asks/s (Greenroom: UserStore.GetOwn)', [undefined, undefined, undefined, rate(r.getOwn)], times(rateRatio(r.getOwn, r.ioEcho)));
    row('Ask latency p50 / p99 (Greenroom: Echo.Echo)', [l(r.rawEcho), l(r.jsonEcho), l(r.ioEcho), l(r.asks)], '');
    const c = (x: RateResult | undefined) => (Number.isFinite(cpuPerAsk(x)) ? us(cpuPerAsk(x)) : undefined);
    row('Server CPU per ask (Greenroom: Echo.Echo)', [c(r.rawEcho), c(r.jsonEcho), c(r.ioEcho), c(r.asks)], times(cpuPerAsk(r.asks) / cpuPerAsk(r.ioEcho)));
    row('Server CPU per ask (Greenroom: UserStore.GetOwn)', [undefined, undefined, undefined, c(r.getOwn)], times(cpuPerAsk(r.getOwn) / cpuPerAsk(r.ioEcho)));
  }
  const mems = [r.memRaw, r.memJson, r.memIo, r.memGreenroom];
  if (mems.some(Boolean)) {
    row('RSS per idle connection', mems.map((m) => (m ? kb(m.rssPerConn) : undefined)), q(r.memGreenroom?.rssPerConn, r.memIo?.rssPerConn));
    row('Heap per idle connection', mems.map((m) => (m ? kb(m.heapPerConn) : undefined)), q(r.memGreenroom?.heapPerConn, r.memIo?.heapPerConn));
  }
  const storms = [r.stormRaw, r.stormJson, r.stormIo, r.stormGreenroom];
  if (storms.some(Boolean)) {
    row('Reconnect storm: restart → all answered', storms.map((x) => (x ? ms(x.totalMs) : undefined)), q(r.stormGreenroom?.totalMs, r.stormIo?.totalMs));
    row('… of which: new server ready → all answered', storms.map((x) => (x ? ms(x.reconnectMs) : undefined)), q(r.stormGreenroom?.reconnectMs, r.stormIo?.reconnectMs));
    row('… new server start (exit of the old → ready)', storms.map((x) => (x ? ms(x.startMs) : undefined)), q(r.stormGreenroom?.startMs, r.stormIo?.startMs));
    row('Reconnect storm errors', storms.map((x) => (x ? String(x.errors) : undefined)), '');
  }
  if (lines.length === 0) return '';
  return ['| measure | raw ws | ws + JSON | Socket.IO | Greenroom | Greenroom ÷ Socket.IO |', '| --- | ---: | ---: | ---: | ---: | ---: |', ...lines].join('\n');
}

/** The store at scale: one row per size. Empty when the phase did not run. */
export function scaleMarkdown(r: Results): string {
  const l = r.lowdbScale;
  if (!l) return '';
  const lines = [
    `| stored sessions (users) | refreshes/s (${l.inflight} in flight) | p50 / p99 | spawn → /readyz | on disk | heap per stored session | RSS per stored session |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| 0 (empty store) | | | ${ms(l.emptyStartMs)} | | (heap ${mib(l.emptyHeap)}) | (RSS ${mib(l.emptyRss)}) |`,
  ];
  for (const z of l.sizes) {
    const who = `${int(z.sessions)} (${int(z.users)})`;
    if (z.failed || !z.refresh) lines.push(`| ${who} | failed: ${(z.failed ?? '').replace(/\|/g, '/')} | | ${z.startMs === undefined ? '—' : ms(z.startMs)} | ${mib(z.seedBytes)} (seed) | | |`);
    else lines.push(`| ${who} | ${int(z.refresh.rate)} | ${lat(z.refresh)} | ${ms(z.startMs!)} | ${mib(z.storeBytes!)} | ${int(z.heapPerSession!)} B | ${int(z.rssPerSession!)} B |`);
  }
  return lines.join('\n');
}

/** The soak: the store afterwards, and the first window against the last. Empty when the phase did not run. */
export function soakMarkdown(r: Results): string {
  const k = r.soak;
  if (!k) return '';
  const w = `${k.windowMs / 1000} s`;
  const windows = (parts: Array<Array<[number, number]>>, q: number) => {
    const full = parts.filter((p) => p.length > 0);
    if (full.length === 0) return ['—', '—', ''];
    const first = Histogram.fromSparse(full[0]!).quantile(q);
    const last = Histogram.fromSparse(full[full.length - 1]!).quantile(q);
    return [`${first.toFixed(2)} ms`, `${last.toFixed(2)} ms`, times(last / first)];
  };
  const s = k.sessions;
  const per = (bytes: number, n: number) => (n === 0 ? '—' : `${int(bytes / n)} B`);
  const [a1, a2, aq] = windows(k.cycles.windows, 0.5);
  const [b1, b2, bq] = windows(k.asks.windows, 0.99);
  return [
    `| soak, ${(k.durationMs / 60_000).toFixed(1)} min at ${k.cycleRate} cycles/s | first ${w} | last ${w} | last ÷ first |`,
    '| --- | ---: | ---: | ---: |',
    `| auth p50 (guest sign-in, refresh, logout) | ${a1} | ${a2} | ${aq} |`,
    `| UserStore.GetOwn p99 | ${b1} | ${b2} | ${bq} |`,
    '',
    '| store after the soak | |',
    '| --- | ---: |',
    `| on disk at the end (after the stop) | ${mib(k.runningBytes)} (${mib(k.stoppedBytes)}) |`,
    `| live sessions / ended sessions / users | ${int(s.live)} / ${int(s.ended)} / ${int(s.users)} |`,
    `| JSON bytes per live session / per ended session | ${per(s.liveBytes, s.live)} / ${per(s.endedBytes, s.ended)} |`,
    `| on disk per completed cycle (growth ÷ cycles) | ${k.cycles.completed === 0 ? '—' : `${int((k.runningBytes - k.before.bytes) / k.cycles.completed)} B`} |`,
  ].join('\n');
}

/** Several nodes on one Redis: asks, revocation latency, the store at scale. Empty when the phase did not run. */
export function clusterMarkdown(r: Results): string {
  const k = r.cluster;
  if (!k) return '';
  const c = r.config;
  const parts: string[] = [];
  if (k.asks) {
    const { raw, sides } = k.asks;
    const oneLowdb = (ask: string) => sides.find((x) => x.ask === ask && x.setup === 'lowdb, 1 node')?.result;
    const perAsk = (x: RateResult) => (Number.isFinite(cpuPerAsk(x)) ? us(cpuPerAsk(x)) : '');
    const line = (name: string, x: RateResult, vsLowdb: string) => `| ${name} | ${int(x.rate)} | ${lat(x)} | ${times(rateRatio(x, raw))} | ${vsLowdb} | ${perAsk(x)} |`;
    parts.push(
      [
        `| ${c.load.sockets} sockets × ${c.load.inflight} asks in flight, half from each client process | asks/s | p50 / p99 | ÷ raw ws | ÷ lowdb, 1 node | node CPU per ask |`,
        '| --- | ---: | ---: | ---: | ---: | ---: |',
        line('raw ws echo', raw, ''),
        ...sides.map((x) => line(`${x.ask}, ${x.setup}`, x.result, x.setup === 'lowdb, 1 node' ? '' : times(rateRatio(x.result, oneLowdb(x.ask))))),
      ].join('\n'),
    );
  }
  if (k.revocation.length > 0) {
    const one = k.revocation.find((x) => x.setup === 'Redis, 1 node')?.result;
    const base = one && Histogram.fromSparse(one.close);
    const order: ClusterSetup[] = ['lowdb, 1 node', 'Redis, 1 node', 'Redis, 2 nodes'];
    const measured = [...k.revocation].sort((x, y) => order.indexOf(x.setup) - order.indexOf(y.setup));
    const lines = measured.map(({ setup, result: x }) => {
      const close = Histogram.fromSparse(x.close);
      const where = setup === 'Redis, 2 nodes' ? 'Redis, 2 nodes: asked on A, the socket on B' : `${setup}: asked and held on it`;
      const vs = setup === 'Redis, 1 node' || !base ? '' : `${times(close.quantile(0.5) / base.quantile(0.5))} / ${times(close.quantile(0.99) / base.quantile(0.99))}`;
      return `| ${where} | ${int(x.samples)} | ${p50p99(x.close)} | ${p50p99(x.answer)} | ${int(x.closedAfterAnswer)} | ${vs} |`;
    });
    parts.push(
      [
        '| `SessionStore.Revoke` asked by an admin → the session\'s socket closed, seen by the client | revocations | close p50 / p99 | answer p50 / p99 | closed after the answer | close p50 / p99 ÷ Redis, 1 node |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
        ...lines,
      ].join('\n'),
    );
  }
  if (k.scale.length > 0) {
    const rate = (x: RateResult | undefined) => (x ? int(x.rate) : 'failed');
    const ratio = (redis: RateResult | undefined, lowdb: RateResult | undefined) => (redis && lowdb ? times(rateRatio(redis, lowdb)) : '—');
    const lines = k.scale.map((z) => {
      const who = `${int(z.users)} (${int(z.sessions)})`;
      if (z.failed && !z.lowdb && !z.redis) return `| ${who} | failed: ${z.failed.replace(/\|/g, '/')} | | | | | |`;
      const h = [z.lowdb?.handshakes, z.redis?.handshakes] as const;
      const f = [z.lowdb?.refresh, z.redis?.refresh] as const;
      return `| ${who} | ${rate(h[0])} | ${rate(h[1])} | ${ratio(h[1], h[0])} | ${rate(f[0])} | ${rate(f[1])} | ${ratio(f[1], f[0])} |`;
    });
    parts.push(
      [
        `| users (sessions), one node | handshakes/s, lowdb | handshakes/s, Redis | Redis ÷ lowdb | refreshes/s, lowdb | refreshes/s, Redis | Redis ÷ lowdb |`,
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...lines,
      ].join('\n'),
    );
  }
  return parts.join('\n\n');
}

/** The figures behind the several-nodes tables. */
export function clusterDetailsMarkdown(r: Results): string {
  const k = r.cluster;
  if (!k) return '';
  const c = r.config;
  const out: string[] = [`- Redis ${k.redisVersion}, shared by the nodes of each setup under a key prefix of this run (removed afterwards)`];
  if (k.asks) {
    out.push(rateLine('asks, raw ws echo', k.asks.raw, cpu(k.asks.raw)));
    for (const x of k.asks.sides) out.push(rateLine(`asks, ${x.ask}, ${x.setup}`, x.result, cpu(x.result)));
  }
  for (const { setup, result: x } of k.revocation) {
    const codes = Object.entries(x.codes).map(([code, n]) => `${code} × ${int(n)}`).join(', ');
    out.push(`- revocations, ${setup}: ${int(x.samples)} timed; close codes ${codes || 'none'}; closed after the answer ${int(x.closedAfterAnswer)}; errors ${x.errors}${x.firstError ? ` (first: ${x.firstError.split('\n')[0]})` : ''}`);
  }
  for (const z of k.scale) {
    const who = `${int(z.users)} users, ${int(z.sessions)} sessions`;
    if (z.seedMs !== undefined) out.push(`- ${who}: seeded in ${ms(z.seedMs)} (the lowdb file, ${mib(z.seedBytes ?? 0)}, and Redis, in one pass); ${int(z.sample ?? 0)} distinct sessions' tokens presented`);
    for (const [store, side] of [['lowdb', z.lowdb], ['Redis', z.redis]] as const) {
      if (!side) continue;
      out.push(`- ${who}, ${store}: spawn → /readyz ${ms(side.startMs)}`);
      if (side.handshakes) out.push(rateLine(`${who}, ${store}, handshakes (${c.handshake.inflight} in flight)`, side.handshakes));
      if (side.refresh) out.push(rateLine(`${who}, ${store}, refreshes (${c.lowdb.inflight} in flight)`, side.refresh, `; statuses ${JSON.stringify(side.refresh.statuses)}`));
    }
    if (z.failed) out.push(`- ${who}: **failed**: ${z.failed}`);
  }
  return out.join('\n');
}

/** Every table a run made: the targets, Greenroom beside the peers, the store at scale, the soak. */
export function tablesMarkdown(rows: Row[], r: Results): string {
  const parts = [tableMarkdown(rows)];
  const peers = peersMarkdown(r);
  if (peers) parts.push(`Greenroom beside each peer, from the same run:\n\n${peers}`);
  const scale = scaleMarkdown(r);
  if (scale) parts.push(`The embedded store at scale (the built server; seed files written straight to disk):\n\n${scale}`);
  const soak = soakMarkdown(r);
  if (soak) parts.push(soak);
  return parts.join('\n\n');
}

export function tableMarkdown(rows: Row[]): string {
  const lines = ['| measure | Greenroom | baseline | ratio | target | met? |', '| --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) lines.push(`| ${r.metric} | ${r.greenroom} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met}${r.gap ? ` (${r.gap})` : ''} |`);
  return lines.join('\n');
}

/** One rate as a line of the details: how many in how long, the rate (and each round's), latency, errors. */
function rateLine(name: string, x: RateResult, more = ''): string {
  const rounds = x.rounds && x.rounds.length > 1 ? ` (median of ${x.rounds.length} rounds: ${x.rounds.map(int).join(', ')})` : '';
  return `- ${name}: ${int(x.count)} in ${x.seconds} s, ${int(x.rate)}/s${rounds}, latency p50 / p99 ${lat(x)}, errors ${x.errors}${x.firstError ? ` (first: ${x.firstError.split('\n')[0]})` : ''}${more}`;
}

/** The server CPU of a rate, for its details line ('' when it was not read). */
const cpu = (x: RateResult | undefined) => (x?.cpuUs === undefined ? '' : `; server CPU ${(x.cpuUs / 1e6).toFixed(2)} s = ${us(cpuPerAsk(x))} per ask`);

/** The figures behind the table: errors, latencies, breakdowns. */
export function detailsMarkdown(r: Results): string {
  const out: string[] = [];
  const rate = (name: string, x: RateResult | undefined, more = '') => {
    if (x) out.push(rateLine(name, x, more));
  };
  rate('raw ws handshakes', r.rawHandshakes);
  rate('ws + JSON handshakes', r.jsonHandshakes);
  rate('Socket.IO handshakes', r.ioHandshakes);
  rate('Greenroom handshakes', r.grHandshakes);
  rate('raw ws echo', r.rawEcho, cpu(r.rawEcho));
  rate('ws + JSON echo', r.jsonEcho, cpu(r.jsonEcho));
  rate('Socket.IO ack echo', r.ioEcho, cpu(r.ioEcho));
  rate('Greenroom asks to Echo.Echo', r.asks, cpu(r.asks));
  rate('Greenroom asks to UserStore.GetOwn', r.getOwn, cpu(r.getOwn));
  const pushed = (x: RateResult | undefined) => (x?.pushes === undefined ? '' : `; pushes received ${int(x.pushes / x.seconds)}/s (${(x.pushes / Math.max(1, x.count)).toFixed(1)} per answered ask)`);
  const rooms = (name: string, x: RateResult | undefined) => rate(name, x, pushed(x));
  rooms('rooms, Greenroom asks to Echo.Echo (the baseline; same sockets, subscriptions and payload)', r.roomsEcho);
  rooms('rooms, chat posts to 1 room', r.roomsOne);
  rooms(`rooms, chat posts to ${r.config.rooms.rooms} rooms`, r.roomsMany);
  const mem = (name: string, m: MemResult | undefined) => {
    if (!m) return;
    out.push(
      `- ${name}: ${int(m.connections)} connections opened in ${m.openSeconds.toFixed(1)} s; RSS ${int(m.rssBefore / 2 ** 20)} → ${int(m.rssAfter / 2 ** 20)} MiB; per connection RSS ${kb(m.rssPerConn)}, heap ${kb(m.heapPerConn)}, external ${kb(m.externalPerConn)}`,
    );
  };
  mem('memory, raw ws', r.memRaw);
  mem('memory, ws + JSON', r.memJson);
  mem('memory, Socket.IO', r.memIo);
  mem('memory, Greenroom', r.memGreenroom);
  const storm = (name: string, s: StormResult | undefined) => {
    if (!s) return;
    out.push(
      `- ${name}: ${int(s.clients)} clients; total ${ms(s.totalMs)} = old server down ${ms(s.downMs)} + new server start ${ms(s.startMs)} (${ms(s.serverReadyMs)} of it from the new process's start to ready) + reconnect and ask ${ms(s.reconnectMs)}; answered ${int(s.answered)}, errors ${s.errors}, failed attempts ${int(s.retries)}${s.firstError ? ` (first error: ${s.firstError})` : ''}`,
    );
  };
  storm('reconnect storm, raw ws', r.stormRaw);
  storm('reconnect storm, ws + JSON', r.stormJson);
  storm('reconnect storm, Socket.IO', r.stormIo);
  storm('reconnect storm, Greenroom (built server, `bin/greenroom.mjs serve`)', r.stormGreenroom);
  if (r.refreshStorm) {
    const s = r.refreshStorm;
    out.push(`- refresh storm: ${s.concurrency} requests in ${ms(s.ms)}; statuses ${JSON.stringify(s.statuses)}; distinct new pairs returned ${s.distinctPairs}; rotations counted by the server ${s.rotations}; the session's generation ${s.generation}`);
  }
  const l = r.lowdbScale;
  if (l) {
    out.push(`- lowdb, the built server on an empty store: ready in ${ms(l.emptyStartMs)}, heap ${mib(l.emptyHeap)}, RSS ${mib(l.emptyRss)}`);
    for (const z of l.sizes) {
      const head = `- lowdb, ${int(z.sessions)} sessions (${int(z.users)} users): seed file ${mib(z.seedBytes)} written in ${ms(z.seedMs)}`;
      if (z.failed) {
        out.push(`${head}; **failed**: ${z.failed}`);
        continue;
      }
      const x = z.refresh!;
      const flushes = z.flushes === null || z.flushes === undefined ? 'store flushes not counted' : `${int(z.flushes)} store flushes (${(x.count / Math.max(1, z.flushes)).toFixed(1)} refreshes per flush, warm-up included in flushes)`;
      out.push(
        `${head}; spawn → /readyz ${ms(z.startMs!)}; ${int(x.count)} refreshes of ${int(z.sample)} distinct sessions in ${x.seconds} s = ${int(x.rate)}/s, p50 / p99 ${lat(x)}, errors ${x.errors}${x.firstError ? ` (first: ${x.firstError.split('\n')[0]})` : ''}; ${flushes}; heap ${int(z.heapPerSession!)} B and RSS ${int(z.rssPerSession!)} B per stored session; stop ${ms(z.stopMs!)}; on disk after the stop ${mib(z.storeBytes!)}`,
      );
    }
  }
  if (r.mailbox) {
    const m = r.mailbox;
    rate('mailbox, guest sign-ins', m.guests);
    rate('mailbox, UserStore.GetOwn idle', m.idle);
    rate('mailbox, UserStore.GetOwn during the auth storm', m.storm);
    for (const [name, k] of [['guest sign-ins', m.auth.guest], ['refreshes', m.auth.refresh]] as const) {
      const h = Histogram.fromSparse(k.latency);
      out.push(`- mailbox, storm ${name}: ${int(k.count)} answered 200, p50 / p99 ${h.quantile(0.5).toFixed(2)} / ${h.quantile(0.99).toFixed(2)} ms; statuses ${JSON.stringify(k.statuses)}${k.firstError ? ` (first error: ${k.firstError})` : ''}`);
    }
  }
  if (r.soak) {
    const k = r.soak;
    out.push(
      `- soak: ${int(k.cycles.cycles)} cycles started in ${(k.durationMs / 60_000).toFixed(1)} min, ${int(k.cycles.completed)} completed, ${k.cycles.errors} errors${k.cycles.firstError ? ` (first: ${k.cycles.firstError})` : ''}; statuses ${JSON.stringify(k.cycles.statuses)}; GetOwn asks ${int(k.asks.count)}, errors ${k.asks.errors}; users ${int(k.before.sessions.users)} → ${int(k.sessions.users)}; on disk ${mib(k.before.bytes)} before, ${mib(k.runningBytes)} at the end, ${mib(k.stoppedBytes)} after the stop`,
    );
  }
  if (r.startup) {
    const s = r.startup;
    const series = (name: string, x: StartupSeries) => {
      const after = x.readyMs.map((v, i) => x.listeningMs[i]! - v);
      const each = x.readyMs.map((v) => int(v)).join(', ');
      const bad = x.badExits.length > 0 ? `; **not a clean exit**: ${x.badExits.join(', ')}` : '';
      out.push(
        `- start-up, ${name}: spawn → healthy ${each} ms (median ${ms(median(x.readyMs))}); spawn → its listening log line, median ${ms(median(x.listeningMs))} (${ms(median(after))} after healthy, median); SIGTERM → exit, median ${ms(median(x.stopMs))}${bad}`,
      );
    };
    series('raw ws (`node src/servers/raw-startup.mjs`)', s.raw);
    series('built server, empty data dir', s.built);
    series('ts-node server, empty data dir', s.dev);
    series(`built server, ${int(s.users)} users and ${int(s.sessions)} sessions`, s.seeded);
    out.push(`- start-up: the four servers started in turn, ${s.starts} rounds, each on a fresh port (and a fresh data dir, or a fresh copy of the seeded one); \`GET /healthz\` polled every ${s.pollMs} ms; before the phase, \`node scripts/build.mjs\`: ${s.build}`);
  }
  for (const f of r.failures ?? []) out.push(`- **${f.phase} failed**: ${f.error.split('\n')[0]}`);
  return out.join('\n');
}

export function printTable(rows: Row[], r: Results): void {
  const cols: Array<keyof Row> = ['metric', 'greenroom', 'baseline', 'ratio', 'target', 'met'];
  const cells = [['measure', 'Greenroom', 'baseline', 'ratio', 'target', 'met?'], ...rows.map((row) => cols.map((c) => (c === 'met' && row.gap ? `${row.met} (${row.gap})` : String(row[c] ?? ''))))];
  const widths = cols.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  console.log('');
  for (const [n, line] of cells.entries()) {
    console.log(line.map((cell, i) => (i === 0 || i >= 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log('');
  for (const t of [peersMarkdown(r), scaleMarkdown(r), soakMarkdown(r), clusterMarkdown(r)]) if (t) console.log(`${t}\n`);
  console.log(detailsMarkdown(r));
  if (r.cluster) console.log(`\n${clusterDetailsMarkdown(r)}`);
  console.log('');
}

const RESULTS = ['<!-- bench:results -->', '<!-- /bench:results -->'] as const;
const PROFILE = ['<!-- bench:profile -->', '<!-- /bench:profile -->'] as const;
const CLUSTER = ['<!-- bench:cluster -->', '<!-- /bench:cluster -->'] as const;

function replaceBetween(doc: string, [open, close]: readonly [string, string], body: string): string {
  const i = doc.indexOf(open);
  const j = doc.indexOf(close);
  if (i < 0 || j < i) return `${doc.trimEnd()}\n\n${open}\n${body}\n${close}\n`;
  return `${doc.slice(0, i + open.length)}\n${body}\n${doc.slice(j)}`;
}

/** Which run this was: the machine, the date, the command (printed after the table, and written above it). */
export function runMarkdown(o: { machine: Machine; command: string; results: Results; only: string[] }): string {
  const m = o.machine;
  return [
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}; Node ${m.node}; load average at start ${m.loadavg}`,
    `- Date: ${m.date}`,
    `- Command: \`${o.command}\` (phases: ${o.only.join(', ')}; ${o.results.config.warmupMs / 1000} s warm-up + ${o.results.config.durationMs / 1000} s measured per rate, handshakes, throughput, rooms and the several nodes' asks in ${o.results.config.rounds} alternating rounds; whole run ${o.results.seconds?.toFixed(0) ?? '?'} s)`,
  ].join('\n');
}

export function writeDocs(
  path: string,
  o: {
    machine: Machine;
    command: string;
    rows: Row[];
    results: Results;
    profiles: Array<{ title: string; summary: ProfileSummary }>;
    writeResults: boolean;
    /** The several-nodes section, which any run of that phase rewrites (it is not in the results table). */
    writeCluster: boolean;
    only: string[];
  },
): void {
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const env = runMarkdown(o);
  if (o.writeResults) {
    doc = replaceBetween(doc, RESULTS, `${env}\n\n${tablesMarkdown(o.rows, o.results)}\n\nDetails of the same run:\n\n${detailsMarkdown(o.results)}`);
  }
  if (o.writeCluster) {
    doc = replaceBetween(doc, CLUSTER, `${env}\n\n${clusterMarkdown(o.results)}\n\nDetails of the same run:\n\n${clusterDetailsMarkdown(o.results)}`);
  }
  if (o.profiles.length > 0) {
    const note = `${env}\n\nThe Greenroom server process ran under \`--cpu-prof\`; each table covers only the measured window of its phase (warm-up and start-up cut off). Rates measured with the profiler on are lower than in the table above.\n`;
    doc = replaceBetween(doc, PROFILE, `${note}\n${o.profiles.map((p) => profileMarkdown(p.title, p.summary)).join('\n')}`);
  }
  writeFileSync(path, doc);
}
