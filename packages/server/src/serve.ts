/**
 * `serve(options)`: the stand-alone server as a process runs it, with the signal handling `greenroom serve` uses
 * (the command calls this too). SIGTERM or SIGINT stops the server gracefully and exits 0 (1 if the stop fails).
 */
import { Greenroom, internals, type GreenroomOptions } from './server.js';

/** Signals this close together are one request to stop. */
const SAME_SIGNAL_MS = 1000;

/**
 * Starts `Greenroom.start(options)` and owns the process's SIGTERM and SIGINT from then on: the first stops the
 * server and exits; a second one a second or more later exits 1 at once. Resolves with the running server.
 */
export async function serve(options: GreenroomOptions = {}): Promise<Greenroom> {
  // The handlers are in place before the server starts: a signal during start-up stops it gracefully once it is up
  // (a supervisor may stop it as soon as its health check passes), never kills it with its lock left behind.
  let first = 0;
  let started: Greenroom | null = null;
  let pending: NodeJS.Signals | null = null;
  const stop = (server: Greenroom, signal: NodeJS.Signals) => {
    internals(server).log.info({ signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        internals(server).log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal exits at once — but one within a second of the first is the same request: a Ctrl-C in a
    // terminal reaches this process both from the terminal and forwarded by `npm start`.
    if (first > 0) {
      if (Date.now() - first >= SAME_SIGNAL_MS) process.exit(1);
      return;
    }
    first = Date.now();
    if (started) stop(started, signal);
    else pending = signal;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    started = await Greenroom.start(options);
  } catch (err) {
    // Nothing is running: a signal now takes its default course again, and the caller reports the failure.
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw err;
  }
  if (pending) stop(started, pending);
  return started;
}
