// The child side of the bench's IPC (../ipc.ts) for the servers written in plain JavaScript, which `node` runs alone
// (no ts-node: their start-up is their own): the same message shapes, `{rpc, method, params}` → `{rpc, result|error}`
// and `{event, data}`.

/** Serves `handlers` to the parent; exits when the parent disconnects. */
export function serve(handlers) {
  if (!process.send) throw new Error('this script is a bench child process: run it through `pnpm bench`');
  process.on('message', (msg) => {
    if (typeof msg !== 'object' || msg === null || typeof msg.rpc !== 'number') return;
    const handler = handlers[msg.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no method ${msg.method}`);
        return handler(msg.params);
      })
      .then(
        (result) => process.send?.({ rpc: msg.rpc, result: result ?? null }),
        (err) => process.send?.({ rpc: msg.rpc, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Tells the parent something happened (not an answer to a call). */
export function emit(event, data = null) {
  process.send?.({ event, data });
}

/** The options a child was started with (JSON in BENCH_OPTS). */
export function childOptions() {
  return JSON.parse(process.env.BENCH_OPTS ?? '{}');
}

/** The process's memory after three forced GCs (run with --expose-gc), and its connection count. */
export async function memoryAfterGc(connections) {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...process.memoryUsage(), connections: connections() };
}

/** The methods every bench server answers besides its own: CPU time and the profile clock. */
export const common = {
  cpu: () => process.cpuUsage(),
  /** The monotonic clock in µs, the one V8's CPU profiles use (for cutting a profile to a measured window). */
  mark: () => Number(process.hrtime.bigint() / 1000n),
};
