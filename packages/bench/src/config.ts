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
  /**
   * The store at scale: for each size (stored sessions), a store file of `size / sessionsPerUser` users written
   * straight to disk, the built server started on it, then refreshes of distinct sessions (`sample` of them, spread
   * over the store), `inflight` at a time, for `warmupMs` + `durationMs` (longer than other rates: a flush of a large
   * store takes seconds, and the first one encodes every record).
   */
  lowdb: { sizes: number[]; sessionsPerUser: number; inflight: number; sample: number; warmupMs: number; durationMs: number; timeoutMs: number };
  /**
   * The mailbox under load: guest sign-ins with `guestInflight` in flight; `UserStore.GetOwn` asked at `askRate`/s
   * over `askSockets` sockets, alone and during an open-loop storm of `stormRate` auth requests/s (a share
   * `refreshShare` of them refreshes, the rest guest sign-ins).
   */
  mailbox: { guestInflight: number; askSockets: number; askRate: number; stormRate: number; refreshShare: number };
  /**
   * The soak (`--only=soak`): `cycleRate` guest sign-in → refresh → logout cycles per second for `durationMs`
   * (`--soak-minutes`), with `UserStore.GetOwn` asked at `askRate`/s; figures per window of `windowMs`.
   */
  soak: { cycleRate: number; durationMs: number; windowMs: number; askSockets: number; askRate: number };
  reconnect: { clients: number; concurrency: number; jitterMs: number; maxBackoffMs: number; timeoutMs: number };
  /**
   * Several nodes on one Redis (`--only=cluster`): asks in the throughput phase's load shape, over both client
   * processes; per setup, `revocations` sessions revoked one at a time after `revocationWarmup` untimed ones; the
   * store at scale with each of `users` users (`lowdb.sessionsPerUser` sessions each), handshakes
   * (`handshake.inflight` in flight) and refreshes (`lowdb.inflight`, of `lowdb.sample` distinct sessions) for
   * `scaleWarmupMs` + `scaleDurationMs` each. The phase stops after `timeoutMs`.
   */
  cluster: { revocations: number; revocationWarmup: number; users: number[]; scaleWarmupMs: number; scaleDurationMs: number; timeoutMs: number };
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
  lowdb: { sizes: [10_000, 100_000, 1_000_000], sessionsPerUser: 2, inflight: 64, sample: 20_000, warmupMs: 5_000, durationMs: 15_000, timeoutMs: 15 * 60_000 },
  mailbox: { guestInflight: 64, askSockets: 20, askRate: 200, stormRate: 200, refreshShare: 0.5 },
  soak: { cycleRate: 6.7, durationMs: 2 * 60_000, windowMs: 60_000, askSockets: 10, askRate: 50 },
  reconnect: { clients: 10_000, concurrency: 100, jitterMs: 250, maxBackoffMs: 2_000, timeoutMs: 120_000 },
  cluster: { revocations: 400, revocationWarmup: 20, users: [10_000, 100_000], scaleWarmupMs: 2_000, scaleDurationMs: 8_000, timeoutMs: 20 * 60_000 },
  startup: { starts: 7, users: 10_000, sessionsPerUser: 2, pollMs: 5, timeoutMs: 60_000 },
  phaseTimeoutMs: 360_000,
  totalTimeoutMs: 40 * 60_000,
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
  lowdb: { sizes: [1_000], sessionsPerUser: 2, inflight: 16, sample: 1_000, warmupMs: 500, durationMs: 1_000, timeoutMs: 60_000 },
  mailbox: { guestInflight: 16, askSockets: 4, askRate: 100, stormRate: 50, refreshShare: 0.5 },
  soak: { cycleRate: 6.7, durationMs: 20_000, windowMs: 10_000, askSockets: 2, askRate: 20 },
  reconnect: { clients: 200, concurrency: 50, jitterMs: 50, maxBackoffMs: 500, timeoutMs: 20_000 },
  cluster: { revocations: 20, revocationWarmup: 2, users: [1_000], scaleWarmupMs: 100, scaleDurationMs: 500, timeoutMs: 60_000 },
  startup: { starts: 2, users: 1_000, sessionsPerUser: 2, pollMs: 5, timeoutMs: 20_000 },
  phaseTimeoutMs: 60_000,
  totalTimeoutMs: 300_000,
};
