/**
 * The auth state several nodes share through Redis (SPEC §8): tickets, the login, guest and exchange windows, and the
 * cleanup lease, on one connection of their own.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Lease } from './lease.js';
import { connectRedis, redisSettings } from './redis.js';
import { SharedAttempts } from './shared-attempts.js';
import { SharedTickets } from './shared-tickets.js';

export interface SharedAuth {
  tickets: SharedTickets;
  login: SharedAttempts;
  guest: SharedAttempts;
  exchange: SharedAttempts;
  /** Held by the node running the periodic cleanup; a node that dies gives it up within the node lease. */
  cleanupLease: Lease;
  close(): void;
}

export function openSharedAuth(config: Config, log: Logger): SharedAuth {
  const settings = redisSettings(config);
  // An outage is logged once; meanwhile logins, tickets and upgrades answer 503.
  const redis = connectRedis(settings, 'auth', { log });
  const { prefix } = settings;
  return {
    tickets: new SharedTickets(redis, prefix, config.ticketTtlS * 1000, config.maxTicketsPerUser),
    login: new SharedAttempts(redis, prefix, 'login', config.loginMaxFailures, config.loginWindowS * 1000),
    guest: new SharedAttempts(redis, prefix, 'guest', config.guestMaxPerWindow, config.guestWindowS * 1000),
    exchange: new SharedAttempts(redis, prefix, 'exchange', config.exchangeMaxFailures, config.exchangeWindowS * 1000),
    cleanupLease: new Lease(redis, prefix, 'cleanup', config.nodeLeaseS * 1000),
    close: () => redis.disconnect(),
  };
}
