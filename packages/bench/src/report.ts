/**
 * The bench's output: one table (printed, and written into docs/benchmarks.md between markers, so the hand-written
 * analysis around it survives a rerun) with each Greenroom figure, its baseline from the same run, the ratio, the
 * target and whether it was met.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';
import type { RateResult } from './client.js';
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

export interface Results {
  config: BenchConfig;
  profiled: boolean;
  seconds?: number;
  failures?: Array<{ phase: string; error: string }>;
  rawHandshakes?: RateResult;
  grHandshakes?: RateResult;
  rawEcho?: RateResult;
  jsonEcho?: RateResult;
  asks?: RateResult;
  /** Rooms phase: Echo.Echo asks (the baseline), chat posts to one room, and to `config.rooms.rooms` rooms. */
  roomsEcho?: RateResult;
  roomsOne?: RateResult;
  roomsMany?: RateResult;
  memRaw?: MemResult;
  memGreenroom?: MemResult;
  refreshStorm?: { ms: number; statuses: Record<string, number>; distinctPairs: number; concurrency: number; generation: number; rotations: number };
  lowdb?: RateResult & { users: number; sessions: number; inflight: number; flushes: number; fileBytes: number; statuses: Record<string, number> };
  stormRaw?: StormResult;
  stormGreenroom?: StormResult;
  startup?: StartupResult;
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
const lat = (r: RateResult) => {
  const h = Histogram.fromSparse(r.latency);
  return `${h.quantile(0.5).toFixed(2)} / ${h.quantile(0.99).toFixed(2)} ms`;
};

/** Greenroom ÷ baseline: the median of the per-round ratios when both ran in rounds, else the ratio of the rates. */
function rateRatio(g: RateResult | undefined, b: RateResult | undefined): number {
  if (!g || !b) return NaN;
  if (g.rounds && b.rounds && g.rounds.length === b.rounds.length && g.rounds.length > 1) return median(g.rounds.map((x, i) => x / b.rounds![i]!));
  return g.rate / b.rate;
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
    });
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
    const metric = `Reconnect storm: ${int(c.reconnect.clients)} clients, restart → all answered one ask, vs raw ws`;
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
      metric: 'Refresh storm: rotations (session generation in the store file)',
      greenroom: String(s.generation),
      baseline: '—',
      ratio: '',
      target: '1',
      met: s.generation === 1 ? '✓' : '✗',
    });
  }
  if (r.lowdb) {
    const l = r.lowdb;
    rows.push({
      metric: `lowdb refreshes/s (${int(l.users)} users, ${int(l.sessions)} sessions, ${l.inflight} in flight)`,
      greenroom: int(l.rate),
      baseline: '—',
      ratio: '',
      target: '≥ 1,000/s',
      ...judged(l.rate / 1000, 1, true),
    });
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

export function tableMarkdown(rows: Row[]): string {
  const lines = ['| measure | Greenroom | baseline | ratio | target | met? |', '| --- | ---: | ---: | ---: | --- | --- |'];
  for (const r of rows) lines.push(`| ${r.metric} | ${r.greenroom} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met}${r.gap ? ` (${r.gap})` : ''} |`);
  return lines.join('\n');
}

/** The figures behind the table: errors, latencies, breakdowns. */
export function detailsMarkdown(r: Results): string {
  const out: string[] = [];
  const rate = (name: string, x: RateResult | undefined, more = '') => {
    if (!x) return;
    const rounds = x.rounds && x.rounds.length > 1 ? ` (median of ${x.rounds.length} rounds: ${x.rounds.map(int).join(', ')})` : '';
    out.push(`- ${name}: ${int(x.count)} in ${x.seconds} s, ${int(x.rate)}/s${rounds}, latency p50 / p99 ${lat(x)}, errors ${x.errors}${x.firstError ? ` (first: ${x.firstError.split('\n')[0]})` : ''}${more}`);
  };
  rate('raw ws handshakes', r.rawHandshakes);
  rate('Greenroom handshakes', r.grHandshakes);
  rate('raw ws echo', r.rawEcho);
  rate('ws + JSON echo', r.jsonEcho);
  rate('Greenroom asks', r.asks);
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
  mem('memory, Greenroom', r.memGreenroom);
  const storm = (name: string, s: StormResult | undefined) => {
    if (!s) return;
    out.push(
      `- ${name}: ${int(s.clients)} clients; total ${ms(s.totalMs)} = old server down ${ms(s.downMs)} + new server start ${ms(s.startMs)} (${ms(s.serverReadyMs)} of it from the new process's start to listening) + reconnect and ask ${ms(s.reconnectMs)}; answered ${int(s.answered)}, errors ${s.errors}, failed attempts ${int(s.retries)}${s.firstError ? ` (first error: ${s.firstError})` : ''}`,
    );
  };
  storm('reconnect storm, raw ws', r.stormRaw);
  storm('reconnect storm, Greenroom', r.stormGreenroom);
  if (r.refreshStorm) {
    const s = r.refreshStorm;
    out.push(`- refresh storm: ${s.concurrency} requests in ${ms(s.ms)}; statuses ${JSON.stringify(s.statuses)}; distinct new pairs returned ${s.distinctPairs}; rotations counted by the server ${s.rotations}; generation in the store file ${s.generation}`);
  }
  if (r.lowdb) {
    const l = r.lowdb;
    out.push(
      `- lowdb: ${int(l.count)} refreshes in ${l.seconds} s = ${int(l.rate)}/s, latency p50 / p99 ${lat(l)}, errors ${l.errors}; ${int(l.flushes)} store flushes (${(l.count / Math.max(1, l.flushes)).toFixed(1)} refreshes per flush, warm-up included in flushes); store file ${(l.fileBytes / 2 ** 20).toFixed(1)} MiB`,
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
  console.log(detailsMarkdown(r));
  console.log('');
}

const RESULTS = ['<!-- bench:results -->', '<!-- /bench:results -->'] as const;
const PROFILE = ['<!-- bench:profile -->', '<!-- /bench:profile -->'] as const;

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
    `- Command: \`${o.command}\` (phases: ${o.only.join(', ')}; ${o.results.config.warmupMs / 1000} s warm-up + ${o.results.config.durationMs / 1000} s measured per rate, handshakes, throughput and rooms in ${o.results.config.rounds} alternating rounds; whole run ${o.results.seconds?.toFixed(0) ?? '?'} s)`,
  ].join('\n');
}

export function writeDocs(
  path: string,
  o: { machine: Machine; command: string; rows: Row[]; results: Results; profiles: Array<{ title: string; summary: ProfileSummary }>; writeResults: boolean; only: string[] },
): void {
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const env = runMarkdown(o);
  if (o.writeResults) {
    doc = replaceBetween(doc, RESULTS, `${env}\n\n${tableMarkdown(o.rows)}\n\nDetails of the same run:\n\n${detailsMarkdown(o.results)}`);
  }
  if (o.profiles.length > 0) {
    const note = `${env}\n\nThe Greenroom server process ran under \`--cpu-prof\`; each table covers only the measured window of its phase (warm-up and start-up cut off). Rates measured with the profiler on are lower than in the table above.\n`;
    doc = replaceBetween(doc, PROFILE, `${note}\n${o.profiles.map((p) => profileMarkdown(p.title, p.summary)).join('\n')}`);
  }
  writeFileSync(path, doc);
}
