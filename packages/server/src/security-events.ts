/**
 * Security events in the log: one structured line per event, written by the one place that sees its effect once.
 * Each line names the `event`, who did it (`by`: a uid, `operator` for the admin socket, `system` for the server
 * itself, `anonymous` for a caller not signed in), the `target` (uid, and sid where one session is meant), and the
 * client address (`from`) where there is one. Nothing secret is ever passed here: no token, ticket, password or hash,
 * cookie, device id or refresh state — ids such as uid, sid and fingerprint hashes only.
 */
import type { Logger } from 'pino';
import type { Caller } from './actors/define.js';

export type SecurityEvent =
  /** An address, a username from an address, or a username across addresses reached the login failure limit. */
  | 'login.failure-burst'
  | 'session.logout'
  /** One session revoked on request. */
  | 'session.revoked'
  /** Every session of a user revoked on request. */
  | 'user.sessions-revoked'
  | 'user.blocked'
  | 'user.unblocked'
  | 'user.role-changed'
  /** A new password (which ends the user's other sessions). */
  | 'user.password-changed'
  /** A client address reached the limit of refused identity exchanges. */
  | 'exchange.failure-burst'
  /** A user made by the first exchange of an identity provider's token for it. */
  | 'user.created-by-exchange';

export interface SecurityEventFields {
  by: string;
  target: { uid: string | null; sid?: string };
  from?: string;
  [detail: string]: unknown;
}

/** `by` and `from` of an ask's caller (for an ask forwarded between actors, the caller it was forwarded for). */
export function actorOf(caller: Caller): { by: string; from?: string } {
  const who = caller.via ?? caller;
  const by = who.system ? 'system' : (who.uid ?? 'operator');
  return who.address ? { by, from: who.address } : { by };
}

export function logSecurityEvent(log: Logger, event: SecurityEvent, fields: SecurityEventFields, level: 'info' | 'warn' = 'info'): void {
  log[level]({ event, ...fields }, event);
}
