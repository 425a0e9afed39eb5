/**
 * Who is connected: the live connections after the green room, their heartbeat, the ask counters, and the steps of
 * a graceful stop (stop accepting, drain what is in flight, close every socket with 1001 `shutdown`).
 */
import type { ServerResponse } from 'node:http';
import { Close } from '@greenroom/protocol';
import type { Connection } from './connection.js';

export class Connections implements Iterable<Connection> {
  private readonly live = new Set<Connection>();
  /** Asks from clients and HTTP requests to Greenroom's routes not answered yet. */
  private inflight = 0;
  private asksTotal = 0;
  private acceptingNew = true;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly rate = { last: 0, perSecond: 0 };
  private readonly rateTimer: NodeJS.Timeout;

  constructor(options: { heartbeatMs: number }) {
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      for (const c of this.live) c.heartbeat(now);
    }, options.heartbeatMs).unref();
    this.rateTimer = setInterval(() => {
      this.rate.perSecond = this.asksTotal - this.rate.last;
      this.rate.last = this.asksTotal;
    }, 1000).unref();
  }

  get size(): number {
    return this.live.size;
  }

  has(connection: Connection): boolean {
    return this.live.has(connection);
  }

  [Symbol.iterator](): Iterator<Connection> {
    return this.live.values();
  }

  /** A connection whose 101 is out. */
  add(connection: Connection): void {
    this.live.add(connection);
  }

  /** A connection whose socket has closed. */
  remove(connection: Connection): void {
    this.live.delete(connection);
  }

  /** An ask from a client went to an actor. */
  askStarted(): void {
    this.inflight += 1;
    this.asksTotal += 1;
  }

  askDone(): void {
    this.inflight -= 1;
  }

  /** Asks received from clients, since the start. */
  get asks(): number {
    return this.asksTotal;
  }

  /** Asks per second, over the last second. */
  askRate(): number {
    return this.rate.perSecond;
  }

  /** False once the server is stopping: no new upgrades, no new asks, and /readyz says so. */
  get accepting(): boolean {
    return this.acceptingNew;
  }

  /** Shutdown, step 1: refuse new upgrades and new asks. */
  stopAccepting(): void {
    this.acceptingNew = false;
  }

  /**
   * An HTTP request to one of Greenroom's routes, counted with the asks in flight until its answer is out, so that a
   * stop answers it before it closes the store (a login halfway through its password check, say).
   */
  trackRequest(res: ServerResponse): void {
    this.inflight += 1;
    res.once('close', () => (this.inflight -= 1));
  }

  /** Shutdown, step 2: wait for asks and HTTP requests in flight, at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Shutdown, step 3: close every socket with 1001 `shutdown`, wait (briefly) for them to go, stop the timers. */
  async closeAll(timeoutMs = 2000): Promise<void> {
    for (const c of this.live) c.close(Close.shutdown);
    const deadline = Date.now() + timeoutMs;
    while (this.live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const c of this.live) c.terminate();
    clearInterval(this.heartbeat);
    clearInterval(this.rateTimer);
  }
}
