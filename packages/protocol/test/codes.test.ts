/**
 * The code tables of codes.ts, held to SPEC §5 and §9.
 */
import { describe, expect, it } from '@jest/globals';
import {
  Close,
  CloseCode,
  ErrorCode,
  SESSION_END_REASONS,
  httpStatus,
  isErrorCode,
  isSessionEndReason,
  parseRetryAfter,
  rateLimitedClose,
  sessionEndOf,
  sessionEnds,
} from '../src/index.js';

describe('codes: error codes', () => {
  it('each ErrorCode value equals its key, and isErrorCode knows exactly those', () => {
    for (const [k, v] of Object.entries(ErrorCode)) {
      expect(v).toBe(k);
      expect(isErrorCode(v)).toBe(true);
    }
    for (const v of ['', 'bad_frame', 'NOPE', 1, null, undefined, {}, 'toString', '__proto__', 'constructor']) expect(isErrorCode(v)).toBe(false);
  });

  it('has every code SPEC §5 names for asks', () => {
    for (const c of ['BAD_FRAME', 'UNKNOWN_ACTOR', 'UNKNOWN_MESSAGE', 'BAD_PAYLOAD', 'FORBIDDEN', 'TIMEOUT', 'RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL', 'NOT_FOUND']) {
      expect(isErrorCode(c)).toBe(true);
    }
    for (const c of ['INVALID_CREDENTIALS', 'INVALID_TOKEN', 'REFRESH_REUSED', 'SESSION_REVOKED', 'SESSION_EXPIRED', 'BLOCKED', 'BAD_ORIGIN']) {
      expect(isErrorCode(c)).toBe(true);
    }
  });

  it('maps every code to an HTTP error status, with the statuses SPEC §4/§9 fix', () => {
    expect(Object.keys(httpStatus).sort()).toEqual(Object.values(ErrorCode).sort());
    for (const s of Object.values(httpStatus)) {
      expect(Number.isInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(400);
      expect(s).toBeLessThan(600);
    }
    expect(httpStatus.INVALID_CREDENTIALS).toBe(401);
    expect(httpStatus.INVALID_TOKEN).toBe(401);
    expect(httpStatus.REFRESH_REUSED).toBe(401);
    expect(httpStatus.SESSION_REVOKED).toBe(401);
    expect(httpStatus.SESSION_EXPIRED).toBe(401);
    expect(httpStatus.BLOCKED).toBe(403);
    expect(httpStatus.BAD_ORIGIN).toBe(403);
    expect(httpStatus.FORBIDDEN).toBe(403);
    expect(httpStatus.RATE_LIMITED).toBe(429);
    expect(httpStatus.UNAVAILABLE).toBe(503);
    expect(httpStatus.METHOD_NOT_ALLOWED).toBe(405);
    expect(httpStatus.PAYLOAD_TOO_LARGE).toBe(413);
    expect(httpStatus.UPGRADE_REQUIRED).toBe(426);
    expect(httpStatus.NOT_FOUND).toBe(404);
    expect(httpStatus.INTERNAL).toBe(500);
  });
});

describe('codes: close codes and reasons (SPEC §9)', () => {
  it('the Close table has exactly the codes and reason texts of §9', () => {
    const table = Object.fromEntries(Object.entries(Close).map(([k, v]) => [k, [v.code, v.reason]]));
    expect(table).toEqual({
      shutdown: [1001, 'shutdown'],
      policy: [1008, 'policy'],
      slowConsumer: [1008, 'slow-consumer'],
      tooBig: [1009, 'too-big'],
      revoked: [4001, 'revoked'],
      expired: [4001, 'expired'],
      evicted: [4001, 'evicted'],
      logout: [4001, 'logout'],
      blocked: [4003, 'blocked'],
    });
  });

  it('a session that ended, or a blocked user, must not reconnect; shutdown may', () => {
    for (const k of ['revoked', 'expired', 'evicted', 'logout', 'blocked'] as const) expect(Close[k].reconnect).toBe('no');
    expect(Close.shutdown.reconnect).toBe('yes');
    expect(rateLimitedClose(3).reconnect).toBe('after-delay');
  });

  it('the server never sends 1013 (no entry of the table uses it)', () => {
    for (const spec of Object.values(Close)) expect(spec.code).not.toBe(CloseCode.TRY_AGAIN_LATER);
    expect(rateLimitedClose(1).code).not.toBe(1013);
  });

  it('CloseCode names the numbers of §5 and §9', () => {
    expect(CloseCode).toEqual({
      NORMAL: 1000,
      GOING_AWAY: 1001,
      POLICY: 1008,
      INVALID_UTF8: 1007,
      TOO_BIG: 1009,
      TRY_AGAIN_LATER: 1013,
      SESSION_ENDED: 4001,
      BLOCKED: 4003,
      RATE_LIMITED: 4008,
    });
  });

  it('every close reason fits a close frame (at most 123 bytes of UTF-8)', () => {
    const reasons = [...Object.values(Close).map((c) => c.reason), rateLimitedClose(1).reason, rateLimitedClose(999_999).reason];
    for (const r of reasons) {
      expect(Buffer.byteLength(r, 'utf8')).toBeLessThanOrEqual(123);
      expect(r.length).toBeGreaterThan(0);
    }
  });
});

describe('codes: how a session ends', () => {
  it('SESSION_END_REASONS are the five reasons of §9, and isSessionEndReason knows exactly those', () => {
    expect([...SESSION_END_REASONS]).toEqual(['revoked', 'expired', 'evicted', 'logout', 'blocked']);
    for (const r of SESSION_END_REASONS) expect(isSessionEndReason(r)).toBe(true);
    for (const v of ['', 'shutdown', 'policy', 'Revoked', 'toString', '__proto__', 4001, null, undefined]) expect(isSessionEndReason(v)).toBe(false);
  });

  it('sessionEnds: each reason closes with its table entry (4003 for a block, 4001 else) and maps to its error', () => {
    expect(Object.keys(sessionEnds)).toEqual([...SESSION_END_REASONS]);
    for (const r of SESSION_END_REASONS) expect(sessionEnds[r].close).toBe(Close[r]);
    expect(Object.fromEntries(SESSION_END_REASONS.map((r) => [r, [sessionEnds[r].close.code, sessionEnds[r].error]]))).toEqual({
      revoked: [4001, 'SESSION_REVOKED'],
      expired: [4001, 'SESSION_EXPIRED'],
      evicted: [4001, 'SESSION_REVOKED'],
      logout: [4001, 'SESSION_REVOKED'],
      blocked: [4003, 'BLOCKED'],
    });
  });

  it('sessionEndOf reads the reason back from a session end\'s close, and from no other close', () => {
    for (const r of SESSION_END_REASONS) expect(sessionEndOf(sessionEnds[r].close)).toBe(r);
    expect(sessionEndOf({ code: 4001, reason: 'revoked' })).toBe('revoked');
    for (const c of [Close.shutdown, Close.policy, Close.slowConsumer, rateLimitedClose(1), { code: 4001, reason: 'blocked' }, { code: 4003, reason: 'revoked' }, { code: 4001, reason: '' }]) {
      expect(sessionEndOf(c)).toBeUndefined();
    }
  });
});

describe('codes: rateLimitedClose and parseRetryAfter', () => {
  it.each([
    [1, 'retry-after=1'],
    [5, 'retry-after=5'],
    [2.1, 'retry-after=3'],
    [0.2, 'retry-after=1'],
    [0, 'retry-after=1'],
    [-4, 'retry-after=1'],
    [60, 'retry-after=60'],
  ])('rateLimitedClose(%p) → 4008 %s (whole seconds, at least 1)', (seconds, reason) => {
    expect(rateLimitedClose(seconds)).toEqual({ code: 4008, reason, reconnect: 'after-delay' });
  });

  it('parseRetryAfter reads what rateLimitedClose writes', () => {
    for (const n of [1, 2, 9, 10, 59, 3600, 999_999]) expect(parseRetryAfter(rateLimitedClose(n).reason)).toBe(n);
  });

  it.each([
    ['retry-after=0', 0],
    ['retry-after=7', 7],
    ['retry-after=007', 7],
    ['retry-after=123456', 123456],
  ])('parseRetryAfter(%p) → %p', (reason, n) => expect(parseRetryAfter(reason)).toBe(n));

  it.each([
    '',
    'blocked',
    'retry-after=',
    'retry-after=-1',
    'retry-after=1.5',
    'retry-after=1e3',
    'retry-after=abc',
    'retry-after=1234567',
    ' retry-after=5',
    'retry-after=5 ',
    'retry-after =5',
    'Retry-After=5',
    'retry-after: 5',
    'retry-after=5\n',
    'x retry-after=5',
  ])('parseRetryAfter(%p) → undefined', (reason) => expect(parseRetryAfter(reason)).toBeUndefined());
});
