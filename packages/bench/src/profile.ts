/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and sums self time per function and per package, optionally
 * only over a time window (µs on the monotonic clock the profile uses; the bench server's `mark` reads it), so the
 * numbers describe the measured phase and not the start-up.
 *
 * Standalone: node --import ./register.mjs src/profile.ts file.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  category: string;
  selfMs: number;
  /** Share of the busy (non-idle) time in the window, 0..1. */
  share: number;
}

export interface ProfileSummary {
  windowMs: number;
  busyMs: number;
  functions: ProfileEntry[];
  categories: Array<{ category: string; selfMs: number; share: number }>;
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Which package or part a frame belongs to. */
export function categoryOf(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName) && !frame.url) return frame.functionName;
  const url = frame.url;
  if (!url) return '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node internals';
  const pnpm = /node_modules\/\.pnpm\/((?:@[^/+]+\+)?[^/@]+)@/.exec(url);
  if (pnpm) return pnpm[1]!.replace('+', '/');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) return nm[1]!;
  const pkg = /packages\/([^/]+)\/src\//.exec(url);
  if (pkg) return `greenroom ${pkg[1]}`;
  return 'other';
}

function shortWhere(frame: CallFrame): string {
  if (!frame.url) return '';
  let u = frame.url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/.pnpm/');
  if (i >= 0) u = u.slice(i + '/node_modules/.pnpm/'.length).replace(/^[^/]+\/node_modules\//, '');
  const j = u.indexOf('/packages/');
  if (j >= 0) u = u.slice(j + 1);
  return `${u}:${frame.lineNumber + 1}`;
}

export interface Window {
  start: number;
  end: number;
}

function inside(windows: Window[] | undefined, t: number): boolean {
  return !windows || windows.some((w) => t >= w.start && t <= w.end);
}

export function summarize(profile: CpuProfile, windows?: Window[], top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, { frame: CallFrame; us: number }>();
  const cats = new Map<string, number>();
  let t = profile.startTime;
  let windowUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next one
    if (!inside(windows, t)) continue;
    const frame = byId.get(profile.samples[i]!);
    if (!frame) continue;
    windowUs += dt;
    if (frame.functionName === '(idle)') {
      idleUs += dt;
      continue;
    }
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const e = self.get(key) ?? { frame, us: 0 };
    e.us += dt;
    self.set(key, e);
    const c = categoryOf(frame);
    cats.set(c, (cats.get(c) ?? 0) + dt);
  }
  const busyUs = Math.max(1, windowUs - idleUs);
  const functions = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      name: e.frame.functionName || '(anonymous)',
      where: shortWhere(e.frame),
      category: categoryOf(e.frame),
      selfMs: e.us / 1000,
      share: e.us / busyUs,
    }));
  const categories = [...cats.entries()].sort((a, b) => b[1] - a[1]).map(([category, us]) => ({ category, selfMs: us / 1000, share: us / busyUs }));
  return { windowMs: windowUs / 1000, busyMs: busyUs / 1000, functions, categories };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

/** Markdown for one profiled phase. */
export function profileMarkdown(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `#### ${title}`,
    '',
    `Measured ${(s.windowMs / 1000).toFixed(1)} s, server busy ${(s.busyMs / 1000).toFixed(1)} s (the rest idle). Shares are of the busy time.`,
    '',
    '| by package | self | share |',
    '| --- | ---: | ---: |',
    ...s.categories.slice(0, 10).map((c) => `| ${c.category} | ${c.selfMs.toFixed(0)} ms | ${pct(c.share)} |`),
    '',
    '| function (self time) | where | self | share |',
    '| --- | --- | ---: | ---: |',
    ...s.functions.map((f) => `| \`${f.name}\` | ${f.where || f.category} | ${f.selfMs.toFixed(0)} ms | ${pct(f.share)} |`),
    '',
  ];
  return lines.join('\n');
}

/** Inclusive (total) time per function over the window: what a call costs with everything it calls. */
export function inclusive(profile: CpuProfile, windows?: Window[], top = 40): Array<{ name: string; where: string; share: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes as Array<{ id: number; children?: number[] }>) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = new Map<string, { frame: CallFrame; us: number }>();
  let busy = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!inside(windows, t)) continue;
    let id: number | undefined = profile.samples[i]!;
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    busy += dt;
    const seen = new Set<string>();
    for (; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      if (frame.functionName === '(root)') continue;
      const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = total.get(key) ?? { frame, us: 0 };
      e.us += dt;
      total.set(key, e);
    }
  }
  return [...total.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.frame.functionName || '(anonymous)', where: shortWhere(e.frame), share: e.us / Math.max(1, busy) }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, ...rest] = process.argv.slice(2);
  if (!file) {
    console.error('usage: profile.ts FILE.cpuprofile [--windows windows.json] [--top N] [--inclusive]');
    process.exit(2);
  }
  const opt = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  // windows.json (written beside each profile by run.ts): [{ title, windows: [{ start, end }] }]
  const wfile = opt('--windows');
  const windows = wfile ? (JSON.parse(readFileSync(wfile, 'utf8')) as Array<{ windows: Window[] }>).flatMap((w) => w.windows) : undefined;
  const top = Number(opt('--top') ?? 25);
  const profile = readProfile(file);
  if (rest.includes('--inclusive')) {
    for (const e of inclusive(profile, windows, top)) console.log(`${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}  ${e.where}`);
  } else {
    console.log(profileMarkdown(file, summarize(profile, windows, top)));
  }
}
