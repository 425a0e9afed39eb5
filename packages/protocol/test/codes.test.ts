/**
 * The code tables of codes.ts, held to docs/protocol.md: error codes (their HTTP statuses, which refuse the
 * credentials), close codes (reasons and what a client does after each), and how a session's end maps to both.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import {
  Close,
  ErrorCode,
  SESSION_END_REASONS,
  closeSpecOf,
  credentialRefusal,
  httpStatus,
  isErrorCode,
  isSessionEndReason,
  parseRetryAfter,
  rateLimitedClose,
  refusalOf,
  sessionEndOf,
  sessionEnds,
  type CloseSpec,
} from '../src/index.js';

/** An entry's policy: what a client does after it, as one comparable value. */
const policy = (spec: CloseSpec): string[] => ('endsIn' in spec ? [spec.reconnect, spec.endsIn] : [spec.reconnect]);

describe('codes: error codes', () => {
  it('each ErrorCode value equals its key, and isErrorCode knows exactly those', () => {
    for (const [k, v] of Object.entries(ErrorCode)) {
      expect(v).toBe(k);
      expect(isErrorCode(v)).toBe(true);
    }
    for (const v of ['', 'bad_frame', 'NOPE', 1, null, undefined, {}, 'toString', '__proto__', 'constructor']) expect(isErrorCode(v)).toBe(false);
  });

  it('has every code docs/protocol.md names for asks', () => {
    for (const c of ['BAD_FRAME', 'UNKNOWN_ACTOR', 'UNKNOWN_MESSAGE', 'BAD_PAYLOAD', 'FORBIDDEN', 'TIMEOUT', 'RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL', 'NOT_FOUND']) {
      expect(isErrorCode(c)).toBe(true);
    }
    for (const c of ['INVALID_CREDENTIALS', 'INVALID_TOKEN', 'REFRESH_REUSED', 'SESSION_REVOKED', 'SESSION_EXPIRED', 'BLOCKED', 'BAD_ORIGIN']) {
      expect(isErrorCode(c)).toBe(true);
    }
  });

  it('maps every code to an HTTP error status, with the statuses docs/protocol.md gives', () => {
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
  it('refuses the credentials for exactly the codes that end a client (signedOut, or blocked for BLOCKED)', () => {
    expect(Object.keys(credentialRefusal).sort()).toEqual(Object.values(ErrorCode).sort());
    const refused = Object.fromEntries(Object.entries(credentialRefusal).filter(([, end]) => end !== null));
    expect(refused).toEqual({
      UNAUTHENTICATED: 'signedOut',
      INVALID_TOKEN: 'signedOut',
      TOKEN_EXPIRED: 'signedOut',
      REFRESH_REUSED: 'signedOut',
      SESSION_REVOKED: 'signedOut',
      SESSION_EXPIRED: 'signedOut',
      BLOCKED: 'blocked',
    });
  });

  it('refusalOf answers null for codes that are not ErrorCodes (the client\'s own, or junk)', () => {
    expect(refusalOf('SESSION_REVOKED')).toBe('signedOut');
    expect(refusalOf('BLOCKED')).toBe('blocked');
    for (const c of ['CONNECTION_LOST', 'SIGNED_OUT', 'CLOSED', 'QUEUE_FULL', '', 'toString', '__proto__', 'blocked']) expect(refusalOf(c)).toBeNull();
  });
});

describe('codes: close codes and reasons (docs/protocol.md)', () => {
  it('the Close table holds every close a client can see, with its reason and what the client does after it', () => {
    const table = Object.fromEntries(Object.entries(Close).map(([k, v]) => [k, [v.code, v.reason, ...policy(v)]]));
    expect(table).toEqual({
      shutdown: [1001, 'shutdown', 'yes'],
      invalidUtf8: [1007, '', 'yes'],
      policy: [1008, 'policy', 'no', 'closed'],
      slowConsumer: [1008, 'slow-consumer', 'yes'],
      tooBig: [1009, 'too-big', 'yes'],
      tryAgainLater: [1013, 'retry-after=N', 'after-delay'],
      revoked: [4001, 'revoked', 'after-refresh', 'signedOut'],
      expired: [4001, 'expired', 'after-refresh', 'signedOut'],
      evicted: [4001, 'evicted', 'after-refresh', 'signedOut'],
      logout: [4001, 'logout', 'after-refresh', 'signedOut'],
      blocked: [4003, 'blocked', 'no', 'blocked'],
      rateLimited: [4008, 'retry-after=N', 'after-delay'],
    });
  });

  it('every close reason fits a close frame (at most 123 bytes of UTF-8)', () => {
    const reasons = [...Object.values(Close).map((c) => c.reason), rateLimitedClose(1).reason, rateLimitedClose(999_999).reason];
    for (const r of reasons) expect(Buffer.byteLength(r, 'utf8')).toBeLessThanOrEqual(123);
  });

  it('every reason the server writes itself is non-empty (only ws\'s own 1007 has none)', () => {
    for (const [name, c] of Object.entries(Close)) if (name !== 'invalidUtf8') expect(c.reason.length).toBeGreaterThan(0);
  });

  it('closeSpecOf finds every entry of the table by its code and reason', () => {
    for (const spec of Object.values(Close)) expect(closeSpecOf(spec.code, spec.reason)).toBe(spec);
  });

  it.each([
    [4001, '', 'revoked'],
    [4001, 'something-new', 'revoked'],
    [4003, '', 'blocked'],
    [4008, 'retry-after=5', 'rateLimited'],
    [4008, '', 'rateLimited'],
    [1013, '', 'tryAgainLater'],
    [1013, 'retry-after=2', 'tryAgainLater'],
    [1009, '', 'tooBig'],
    [1007, 'invalid UTF-8 sequence', 'invalidUtf8'],
    [1001, 'Server restart', 'shutdown'],
  ] as const)('closeSpecOf(%i, %j): the code alone decides, as %s does; the reason is kept as received', (code, reason, name) => {
    const spec = closeSpecOf(code, reason);
    expect(spec.code).toBe(code);
    expect(spec.reason).toBe(reason);
    expect(policy(spec)).toEqual(policy(Close[name]));
  });

  it.each([
    [1000, ''],
    [1006, ''],
    [1006, 'connect timeout'],
    [1011, 'internal error'],
    [1012, ''],
    [1008, ''],
    [1008, 'Policy'],
    [4000, 'flurry'],
    [4999, 'x'],
  ])('closeSpecOf(%i, %j): not in the table (1008 needs its reason) → reconnect with backoff', (code, reason) => {
    expect(closeSpecOf(code, reason)).toEqual({ code, reason, reconnect: 'yes' });
  });

  it('codes whose entries disagree are told apart by their reason: only 1008', () => {
    const codes = new Set(Object.values(Close).map((c) => c.code));
    const split = [...codes].filter((code) => new Set(Object.values(Close).filter((c) => c.code === code).map((c) => policy(c).join())).size > 1);
    expect(split).toEqual([1008]);
  });

  it('a session that ended gets one refresh, then signedOut; a blocked user and a policy close stop; shutdown reconnects', () => {
    for (const k of ['revoked', 'expired', 'evicted', 'logout'] as const) expect(policy(Close[k])).toEqual(['after-refresh', 'signedOut']);
    expect(policy(Close.blocked)).toEqual(['no', 'blocked']);
    expect(policy(Close.policy)).toEqual(['no', 'closed']);
    expect(Close.shutdown.reconnect).toBe('yes');
    expect(rateLimitedClose(3).reconnect).toBe('after-delay');
  });
});

describe('codes: how a session ends', () => {
  it('SESSION_END_REASONS are the five reasons docs/protocol.md names, and isSessionEndReason knows exactly those', () => {
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

  it('a session end\'s error refuses the credentials the way its close ends the client', () => {
    for (const r of SESSION_END_REASONS) {
      const close = sessionEnds[r].close;
      expect('endsIn' in close && close.endsIn).toBe(credentialRefusal[sessionEnds[r].error]);
    }
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
  it('a rateLimitedClose is an after-delay close whose hint closeSpecOf and parseRetryAfter read back', () => {
    for (const n of [1, 7, 3600, 999_999]) {
      const sent = rateLimitedClose(n);
      const seen = closeSpecOf(sent.code, sent.reason);
      expect(seen).toEqual({ code: 4008, reason: `retry-after=${n}`, reconnect: 'after-delay' });
      expect(parseRetryAfter(seen.reason)).toBe(n);
    }
  });
});

describe('codes: docs/protocol.md shows the same tables', () => {
  const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
  /** The rows of the table under a heading, as cells without their backticks. */
  const rows = (heading: string): string[][] => {
    const section = doc.slice(doc.indexOf(`### ${heading}\n`)).split(/\n#{1,3} /, 1)[0]!;
    return section
      .split('\n')
      .filter((line) => line.startsWith('| ') && !line.startsWith('| ---'))
      .slice(1)
      .map((line) => line.slice(2, -2).split(' | '));
  };

  it('every error code, with its HTTP status and whether it refuses the credentials', () => {
    const table = Object.fromEntries(rows('Error codes').map(([code, status, , refused]) => [code!.replaceAll('`', ''), [Number(status), refused]]));
    const expected = Object.fromEntries(
      Object.values(ErrorCode).map((c) => [c, [httpStatus[c], credentialRefusal[c] ? `yes (\`${credentialRefusal[c]}\`)` : 'no']]),
    );
    expect(table).toEqual(expected);
  });

  it('every close, with its code and what the client does after it', () => {
    const table = Object.fromEntries(rows('Close codes').map(([name, code, , , client]) => [name!.replaceAll('`', ''), [Number(code), client]]));
    expect(Object.keys(table)).toEqual(Object.keys(Close));
    for (const [name, spec] of Object.entries(Close)) {
      const [code, client] = table[name]!;
      expect(code).toBe(spec.code);
      expect(client).toMatch(new RegExp(`\\(\`${spec.reconnect}\`\\)$`));
      if ('endsIn' in spec) expect(client).toContain(`\`${spec.endsIn}\``);
    }
  });
});
