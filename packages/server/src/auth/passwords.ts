/**
 * Password hashing with scrypt (node:crypto) at OWASP's cost (N=2^17, r=8, p=1: 128 MiB and a few hundred ms per
 * hash). Format: `scrypt$N$r$p$salt$hash`, base64url parts, so a stored hash names its own parameters: older, cheaper
 * hashes still verify, and login replaces them (`needsRehash`).
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ErrorCode } from '@greenroom/protocol';
import { GreenroomError } from '../errors.js';

const N = 2 ** 17;
const R = 8;
const P = 1;
const KEYLEN = 32;
/** scrypt needs 128·N·r bytes; node's default cap (32 MiB) is below OWASP's cost. */
const MAXMEM = 256 * 1024 * 1024;
/** Stored parameters are read from the store: bounded, so a corrupt hash cannot ask for gigabytes. */
const MAX_N = 2 ** 20;

/**
 * Hashes computed at once, at most. Each takes 128 MiB and one of libuv's four threads, which the store's file writes
 * use too: a flood of logins must not starve the writes (refreshes, revocations) behind it.
 */
const MAX_RUNNING = 2;
/** Hashes waiting for a turn, at most; past it the caller gets UNAVAILABLE (a flood is refused, not queued). */
const MAX_WAITING = 16;
let running = 0;
const waiting: Array<() => void> = [];

async function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  if (running >= MAX_RUNNING) {
    if (waiting.length >= MAX_WAITING) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'too many sign-ins at once; try again', { retryAfterSeconds: 1 });
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running += 1;
  }
  try {
    return await new Promise((resolve, reject) =>
      scryptCb(password.normalize('NFKC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } finally {
    // The turn passes straight to the next waiter (running stays the same), or is given back.
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { N, r: R, p: P, maxmem: MAXMEM });
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Constant-time check. A malformed stored hash verifies as false. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![n, r, p].every((x) => Number.isSafeInteger(x) && x > 0) || n > MAX_N || r > 32 || p > 16 || 128 * n * r > MAXMEM) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length !== KEYLEN) return false;
  const key = await scrypt(password, salt, KEYLEN, { N: n, r, p, maxmem: MAXMEM });
  return timingSafeEqual(key, expected);
}

/** A stored hash made with cheaper parameters than today's: replaced at the next successful login. */
export function needsRehash(stored: string): boolean {
  const [scheme, n, r, p] = stored.split('$');
  return scheme !== 'scrypt' || Number(n) < N || Number(r) < R || Number(p) < P;
}

/** A real hash of a random password: an unknown user still costs one verification, so timing tells nothing. */
export const DUMMY_HASH_PROMISE: Promise<string> = hashPassword(randomBytes(16).toString('hex'));
