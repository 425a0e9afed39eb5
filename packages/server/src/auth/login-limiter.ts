/**
 * The login limiter (docs/security.md). Attempts are counted per client address, per (username, address) and per username
 * across all addresses, before the password is checked; a login that succeeds takes its attempt back. Past the limit,
 * the address (or that username from that address) gets 429 — the correct password included. A username past the
 * limit across all addresses is locked for new devices only: a device that has logged in as that user before (a
 * server-issued device id) still gets its password checked, so guesses from elsewhere never lock a user out of a
 * device they already use. Known and unknown usernames count alike. With several nodes the windows are kept in Redis
 * (cluster/shared-attempts.ts), so the limits hold across nodes as on one.
 */
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';
import { AttemptWindows, type AttemptCounter, type Counted } from './attempt-windows.js';

/** Which limit a failure burst reached: the address's, a username's from that address, or a username's anywhere. */
export type LoginLimit = 'address' | 'username-address' | 'username' | 'device';

export interface LoginAttempt {
  /** The password was right: the attempt is taken back. */
  succeeded(): Promise<void>;
  /**
   * The password was wrong: the limits this attempt's count has brought to their maximum and that were not reached
   * before in their window (so a burst is named once, not once per failure).
   */
  failed(): Promise<LoginLimit[]>;
}

const LIMIT_OF: Record<string, LoginLimit> = { a: 'address', ua: 'username-address', u: 'username', d: 'device' };

export class LoginLimiter {
  private readonly windows: AttemptCounter;

  /** On `windows` (shared by several nodes), or on windows of its own in this process's memory. */
  constructor(windows: AttemptCounter);
  constructor(maxFailures: number, windowMs: number, now?: () => number);
  constructor(windows: AttemptCounter | number, windowMs = 0, now: () => number = Date.now) {
    this.windows = typeof windows === 'number' ? new AttemptWindows(windows, windowMs, now) : windows;
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
    const exempt =
      (await this.windows.retryAfter([global])) > 0 && (await this.windows.retryAfter(local)) === 0 && (await knownDevice());
    // Checked and counted in one step of the counter (after the last await here), so parallel attempts cannot all
    // pass, on one node or on several. An exempt device's attempt still counts against the username.
    const taken = exempt ? await this.windows.take(local, [global]) : await this.windows.take([...local, global]);
    if (!taken.ok) {
      throw new GreenroomError(ErrorCode.RATE_LIMITED, 'too many failed logins; try again later', { retryAfterSeconds: taken.retryAfter });
    }
    const counted: readonly Counted[] = taken.counted;
    return {
      succeeded: () => this.windows.refund(counted),
      failed: async () => (await this.windows.newlyAtLimit(counted)).map((key) => LIMIT_OF[key.slice(0, key.indexOf(':'))]!),
    };
  }

  get maxFailures(): number {
    return this.windows.max;
  }

  stop(): void {
    this.windows.stop();
  }
}
