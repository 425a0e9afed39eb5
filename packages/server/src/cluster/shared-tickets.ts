/**
 * Tickets in Redis (auth/tickets.ts, for several nodes): a ticket issued on one node opens exactly one socket on any.
 *
 * A ticket is a bearer secret, so Redis holds only its SHA-256: `<prefix>tk:<digest>` → the identity it stands for,
 * expiring with the ticket (PX). Spending is GETDEL, atomic, so of any number of concurrent spends on any nodes one
 * gets the identity. Each user's outstanding tickets are a sorted set `<prefix>{u:<uid>}:tickets` of digests by
 * issue time (Redis's clock, in µs): one script adds the new one and pops the oldest past the cap, so the cap holds
 * across nodes; the popped tickets are then deleted. A ticket's own key carries no hash tag (it is found by the
 * ticket alone, and spread over a cluster's slots); no script or transaction touches it together with another key.
 */
import { newTicket, type TicketEntry, type Tickets } from '../auth/tickets.js';
import type { RedisClient } from './redis.js';
import { digest, LuaScript, shared } from './shared-redis.js';

/**
 * KEYS: the user's set. ARGV: the new ticket's digest, the ticket lifetime (ms), the cap. Drops expired entries, adds
 * the new one as the newest (its score is above every other, even within one µs), pops the oldest past the cap and
 * returns their digests.
 */
const ADD = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]) * 1000)
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= now then now = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
local popped = {}
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #oldest, 2 do popped[#popped + 1] = oldest[i] end
end
return popped
`);

export class SharedTickets implements Tickets {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs: number,
    private readonly maxPerUser: number,
  ) {}

  async issue(identity: { uid: string; sid: string; role: string }): Promise<{ ticket: string; expiresAt: number }> {
    const ticket = newTicket();
    const expiresAt = Date.now() + this.ttlMs;
    const entry: TicketEntry = { uid: identity.uid, sid: identity.sid, role: identity.role, expiresAt };
    const id = digest(ticket);
    await shared('the ticket store', async () => {
      const [, popped] = await Promise.all([
        this.redis.set(this.ticketKey(id), JSON.stringify(entry), 'PX', this.ttlMs),
        ADD.run(this.redis, [this.userKey(identity.uid)], [id, this.ttlMs, this.maxPerUser]) as Promise<string[]>,
      ]);
      // Withdrawn before the new ticket is handed out. One key per command: each lives in its own slot.
      await Promise.all(popped.map((old) => this.redis.del(this.ticketKey(old))));
    });
    return { ticket, expiresAt };
  }

  async spend(ticket: string): Promise<TicketEntry | null> {
    const id = digest(ticket);
    const found = await shared('the ticket store', () => this.redis.getdel(this.ticketKey(id)));
    if (found === null) return null;
    const entry = JSON.parse(found) as TicketEntry;
    // Spent already: leaving the user's set is best effort. An entry left there can only make a later issue withdraw
    // a ticket early, never let the user hold more than the cap.
    await this.redis.zrem(this.userKey(entry.uid), id).catch(() => undefined);
    return entry;
  }

  /** Nothing to stop: Redis expires the tickets, and the connection belongs to whoever opened it. */
  stop(): void {}

  private ticketKey(id: string): string {
    return `${this.prefix}tk:${id}`;
  }

  private userKey(uid: string): string {
    return `${this.prefix}{u:${uid}}:tickets`;
  }
}
