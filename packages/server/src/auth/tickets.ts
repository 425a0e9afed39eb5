/**
 * WebSocket tickets: single-use, short-lived, bound to one session — for a page on another origin, which cannot
 * send the cookie or a header with its upgrade. Kept in memory: a ticket outlives no restart (30 s anyway).
 */
import { randomBytes } from 'node:crypto';

interface TicketEntry {
  uid: string;
  sid: string;
  role: string;
  expiresAt: number;
}

export class TicketBook {
  private readonly tickets = new Map<string, TicketEntry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, ttlMs)).unref();
  }

  issue(identity: { uid: string; sid: string; role: string }): { ticket: string; expiresAt: number } {
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.tickets.set(ticket, { uid: identity.uid, sid: identity.sid, role: identity.role, expiresAt });
    return { ticket, expiresAt };
  }

  /** Spends a ticket: the first use gets its identity, every later use (or an expired one) gets null. */
  spend(ticket: string): TicketEntry | null {
    // A Map lookup by the full random value: no prefix or timing leak of other tickets.
    const entry = this.tickets.get(ticket);
    if (!entry) return null;
    this.tickets.delete(ticket);
    return entry.expiresAt > this.now() ? entry : null;
  }

  get size(): number {
    return this.tickets.size;
  }

  sweep(): void {
    const t = this.now();
    for (const [k, e] of this.tickets) if (e.expiresAt <= t) this.tickets.delete(k);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}
