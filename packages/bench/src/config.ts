/** The bench's load shapes: the full run (`pnpm bench`) and the CI smoke configuration (`pnpm bench:ci`). */

export interface BenchConfig {
  name: 'full' | 'ci';
  warmupMs: number;
  /** Measured time of one rate measurement (one round of one side). */
  durationMs: number;
  /** Handshakes and throughput: each side measured this many times, alternating with the others. */
  rounds: number;
  /** Load-client processes kept for the whole run (phases that split clients use them all). */
  clientProcs: number;
  handshake: { inflight: number; sessions: number };
  load: { sockets: number; inflight: number };
  /**
   * Rooms: `sockets` sockets × `inflight` chat posts, to one room, then spread over `rooms` rooms (every socket
   * subscribed to its room); `rooms` ≤ `sockets`, so that every room has a socket.
   */
  rooms: { sockets: number; inflight: number; rooms: number };
  memory: { connections: number; concurrency: number; settleMs: number };
  refreshStorm: { concurrency: number };
  lowdb: { users: number; sessionsPerUser: number; inflight: number };
  reconnect: { clients: number; concurrency: number; jitterMs: number; maxBackoffMs: number; timeoutMs: number };
  /**
   * Start-up: each server started `starts` times (spawn → first `GET /healthz` 200, polled every `pollMs`), one of them
   * on a store of `users` × `sessionsPerUser` sessions; a start not healthy within `timeoutMs` fails the phase.
   */
  startup: { starts: number; users: number; sessionsPerUser: number; pollMs: number; timeoutMs: number };
  /** Every phase is stopped after this long, whatever it is doing. */
  phaseTimeoutMs: number;
  /** The whole run is stopped after this long (exit 1). */
  totalTimeoutMs: number;
}

export const FULL: BenchConfig = {
  name: 'full',
  warmupMs: 1_000,
  durationMs: 5_000,
  rounds: 3,
  clientProcs: 2,
  handshake: { inflight: 50, sessions: 1_000 },
  load: { sockets: 50, inflight: 10 },
  rooms: { sockets: 100, inflight: 5, rooms: 100 },
  memory: { connections: 15_000, concurrency: 100, settleMs: 2_000 },
  refreshStorm: { concurrency: 200 },
  lowdb: { users: 10_000, sessionsPerUser: 2, inflight: 64 },
  reconnect: { clients: 10_000, concurrency: 100, jitterMs: 250, maxBackoffMs: 2_000, timeoutMs: 120_000 },
  startup: { starts: 7, users: 10_000, sessionsPerUser: 2, pollMs: 5, timeoutMs: 60_000 },
  phaseTimeoutMs: 240_000,
  totalTimeoutMs: 15 * 60_000,
};

export const CI: BenchConfig = {
  name: 'ci',
  warmupMs: 100,
  durationMs: 500,
  rounds: 1,
  clientProcs: 2,
  handshake: { inflight: 10, sessions: 20 },
  load: { sockets: 10, inflight: 10 },
  rooms: { sockets: 10, inflight: 2, rooms: 10 },
  memory: { connections: 200, concurrency: 50, settleMs: 100 },
  refreshStorm: { concurrency: 20 },
  lowdb: { users: 100, sessionsPerUser: 2, inflight: 16 },
  reconnect: { clients: 200, concurrency: 50, jitterMs: 50, maxBackoffMs: 500, timeoutMs: 20_000 },
  startup: { starts: 2, users: 1_000, sessionsPerUser: 2, pollMs: 5, timeoutMs: 20_000 },
  phaseTimeoutMs: 40_000,
  totalTimeoutMs: 120_000,
};
