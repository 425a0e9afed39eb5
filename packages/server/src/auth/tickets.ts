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
  /** Each user's outstanding tickets, oldest first: at most `maxPerUser`, so the book stays bounded. */
  private readonly byUser = new Map<string, Set<string>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlMs: number,
    private readonly maxPerUser: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, ttlMs)).unref();
  }

  /** A new ticket; the user's oldest outstanding one is withdrawn if the user already holds the most allowed. */
  issue(identity: { uid: string; sid: string; role: string }): { ticket: string; expiresAt: number } {
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    let own = this.byUser.get(identity.uid);
    if (!own) this.byUser.set(identity.uid, (own = new Set()));
    if (own.size >= this.maxPerUser) this.remove(own.values().next().value!);
    own.add(ticket);
    this.tickets.set(ticket, { uid: identity.uid, sid: identity.sid, role: identity.role, expiresAt });
    return { ticket, expiresAt };
  }

  /** Spends a ticket: the first use gets its identity, every later use (or an expired one) gets null. */
  spend(ticket: string): TicketEntry | null {
    // A Map lookup by the full random value: no prefix or timing leak of other tickets.
    const entry = this.tickets.get(ticket);
    if (!entry) return null;
    this.remove(ticket);
    return entry.expiresAt > this.now() ? entry : null;
  }

  private remove(ticket: string): void {
    const entry = this.tickets.get(ticket);
    if (!entry) return;
    this.tickets.delete(ticket);
    const own = this.byUser.get(entry.uid);
    own?.delete(ticket);
    if (own?.size === 0) this.byUser.delete(entry.uid);
  }

  get size(): number {
    return this.tickets.size;
  }

  sweep(): void {
    const t = this.now();
    for (const [k, e] of this.tickets) if (e.expiresAt <= t) this.remove(k);
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}
