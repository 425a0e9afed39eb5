/**
 * WebSocket tickets: single-use, short-lived, bound to one session — for a page on another origin, which cannot
 * send the cookie or a header with its upgrade. `TicketBook` keeps them in memory (one node: a ticket outlives no
 * restart, 30 s anyway); cluster/shared-tickets.ts keeps them in Redis, so a ticket opens one socket across nodes.
 */
import { randomBytes } from 'node:crypto';

export interface TicketEntry {
  uid: string;
  sid: string;
  role: string;
  expiresAt: number;
}

export interface Tickets {
  /** A new ticket; the user's oldest outstanding one is withdrawn if the user already holds the most allowed. */
  issue(identity: { uid: string; sid: string; role: string }): Promise<{ ticket: string; expiresAt: number }>;
  /** Spends a ticket: the first use gets its identity, every later use (or an expired one) gets null. */
  spend(ticket: string): Promise<TicketEntry | null>;
  stop(): void;
}

/** A 256-bit random ticket. */
export function newTicket(): string {
  return randomBytes(32).toString('base64url');
}

export class TicketBook implements Tickets {
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

  async issue(identity: { uid: string; sid: string; role: string }): Promise<{ ticket: string; expiresAt: number }> {
    const ticket = newTicket();
    const expiresAt = this.now() + this.ttlMs;
    let own = this.byUser.get(identity.uid);
    if (!own) this.byUser.set(identity.uid, (own = new Set()));
    if (own.size >= this.maxPerUser) this.remove(own.values().next().value!);
    own.add(ticket);
    this.tickets.set(ticket, { uid: identity.uid, sid: identity.sid, role: identity.role, expiresAt });
    return { ticket, expiresAt };
  }

  async spend(ticket: string): Promise<TicketEntry | null> {
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
