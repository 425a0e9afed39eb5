/**
 * The bench's processes talk over Node's IPC channel: the orchestrator forks each server and client process, calls
 * named methods in it (`call`), and hears its events (`ready`, ...). A child whose parent goes away exits, so no
 * bench process outlives a run.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
const REGISTER = fileURLToPath(new URL('../register.mjs', import.meta.url));

type Handler = (params: any) => unknown;

interface RpcRequest {
  rpc: number;
  method: string;
  params: unknown;
}

// ---- child side ----

/** Serves `handlers` to the parent; exits when the parent disconnects. */
export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this script is a bench child process: run it through `pnpm bench`');
  process.on('message', (msg: RpcRequest) => {
    if (typeof msg !== 'object' || msg === null || typeof msg.rpc !== 'number') return;
    const handler = handlers[msg.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no method ${msg.method}`);
        return handler(msg.params);
      })
      .then(
        (result) => process.send?.({ rpc: msg.rpc, result: result ?? null }),
        (err: unknown) => process.send?.({ rpc: msg.rpc, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Tells the parent something happened (not an answer to a call). */
export function emit(event: string, data: unknown = null): void {
  process.send?.({ event, data });
}

/** The options a child was started with (JSON in BENCH_OPTS). */
export function childOptions<T>(): T {
  return JSON.parse(process.env.BENCH_OPTS ?? '{}') as T;
}

// ---- parent side ----

const live = new Set<Proc>();

/** Kills every child still running (the orchestrator calls it on the way out, whatever happened). */
export function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
}

export interface ForkOptions {
  /** Extra node flags (`--expose-gc`, `--cpu-prof`, ...). */
  nodeFlags?: string[];
  /** Passed to the child as JSON in BENCH_OPTS. */
  options?: unknown;
  name?: string;
  /** A JavaScript script run by `node` alone: no ts-node, and the workspace packages resolved to their builds. */
  plain?: boolean;
}

export class Proc {
  private nextId = 0;
  private readonly calls = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Array<(data: any) => void>>();
  private readonly events = new Map<string, unknown[]>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitedNow = false;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    live.add(this);
    child.on('message', (msg: { rpc?: number; result?: unknown; error?: string; event?: string; data?: unknown }) => {
      if (typeof msg.rpc === 'number') {
        const call = this.calls.get(msg.rpc);
        this.calls.delete(msg.rpc);
        if (msg.error !== undefined) call?.reject(new Error(`${this.name}: ${msg.error}`));
        else call?.resolve(msg.result);
      } else if (msg.event) {
        const seen = this.events.get(msg.event) ?? [];
        seen.push(msg.data);
        this.events.set(msg.event, seen);
        for (const l of this.listeners.get(msg.event) ?? []) l(msg.data);
      }
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitedNow = true;
        live.delete(this);
        for (const c of this.calls.values()) c.reject(new Error(`${this.name} exited (${signal ?? code}) during a call`));
        this.calls.clear();
        resolve({ code, signal });
      });
    });
  }

  /** Forks `script` (a .ts file under src/, with ts-node registered; or a plain one) with cwd = packages/bench. */
  static fork(script: string, options: ForkOptions = {}): Proc {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const child = fork(path, [], {
      cwd: BENCH_DIR,
      execArgv: [...(options.plain ? [] : ['--import', REGISTER]), ...(options.nodeFlags ?? [])],
      env: { ...process.env, BENCH_OPTS: JSON.stringify(options.options ?? {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Proc(options.name ?? script, child);
  }

  /**
   * Spawns a command that is not a bench child (no IPC, no ts-node): `node <args>` with its own environment, stdout
   * and stderr piped to the caller. Killed with the rest by killAll.
   */
  static spawn(args: string[], options: { name: string; cwd: string; env: NodeJS.ProcessEnv }): Proc {
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new Proc(options.name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exitedNow;
  }

  /** Resolves with the data of the first `event` (one that already happened included); rejects if the child exits first. */
  once<T = unknown>(event: string, timeoutMs: number): Promise<T> {
    const seen = this.events.get(event);
    if (seen && seen.length > 0) return Promise.resolve(seen[0] as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${event} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.listeners.get(event) ?? [];
      list.push((data) => {
        clearTimeout(timer);
        resolve(data as T);
      });
      this.listeners.set(event, list);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${signal ?? code}) before ${event}`));
      });
    });
  }

  call<T = unknown>(method: string, params: unknown = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exitedNow) return Promise.reject(new Error(`${this.name} is not running`));
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ rpc: id, method, params });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exitedNow) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exitedNow) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
