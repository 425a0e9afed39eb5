/**
 * The login limiter (docs/security.md). Attempts are counted per client address, per (username, address) and per username
 * across all addresses, before the password is checked; a login that succeeds takes its attempt back. Past the limit,
 * the address (or that username from that address) gets 429 — the correct password included. A username past the
 * limit across all addresses is locked for new devices only: a device that has logged in as that user before (a
 * server-issued device id) still gets its password checked, so guesses from elsewhere never lock a user out of a
 * device they already use. Known and unknown usernames count alike.
 */
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import { AttemptWindows } from './attempt-windows.js';

/** Which limit a failure burst reached: the address's, a username's from that address, or a username's anywhere. */
export type LoginLimit = 'address' | 'username-address' | 'username' | 'device';

export interface LoginAttempt {
  /** The password was right: the attempt is taken back. */
  succeeded(): void;
  /**
   * The password was wrong: the limits this attempt's count has brought to their maximum and that were not reached
   * before in their window (so a burst is named once, not once per failure).
   */
  failed(): LoginLimit[];
}

const LIMIT_OF: Record<string, LoginLimit> = { a: 'address', ua: 'username-address', u: 'username', d: 'device' };

export class LoginLimiter {
  private readonly windows: AttemptWindows;

  constructor(maxFailures: number, windowMs: number, now: () => number = Date.now) {
    this.windows = new AttemptWindows(maxFailures, windowMs, now);
  }

  /**
   * Lets one attempt through and counts it, or throws RATE_LIMITED. `knownDevice` is asked only when the username is
   * locked across addresses.
   */
  async begin(username: string, address: string, knownDevice: () => Promise<boolean>, device?: string): Promise<LoginAttempt> {
    const name = username.normalize('NFC').toLowerCase();
    // A device id is counted too (per username): the one that exempts a device from the username's lock is itself
    // limited, so a stolen device id does not buy unlimited guesses from rotating addresses.
    const local = [`a:${address}`, `ua:${address}\n${name}`, ...(device ? [`d:${device}\n${name}`] : [])];
    const global = `u:${name}`;
    const userWait = this.windows.retryAfter(global);
    const exempt = userWait > 0 && this.localWait(local) === 0 && (await knownDevice());
    // Checked and counted in one synchronous step (after the only await), so parallel attempts cannot all pass.
    const wait = Math.max(this.localWait(local), exempt ? 0 : this.windows.retryAfter(global));
    if (wait > 0) throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many failed logins; try again later', { retryAfterSeconds: wait });
    const counted = this.windows.count([...local, global]);
    return {
      succeeded: () => this.windows.refund(counted),
      failed: () => this.windows.newlyAtLimit(counted).map((key) => LIMIT_OF[key.slice(0, key.indexOf(':'))]!),
    };
  }

  private localWait(keys: string[]): number {
    return Math.max(...keys.map((k) => this.windows.retryAfter(k)));
  }

  get maxFailures(): number {
    return this.windows.max;
  }

  get size(): number {
    return this.windows.size;
  }

  sweep(): void {
    this.windows.sweep();
  }

  stop(): void {
    this.windows.stop();
  }
}
