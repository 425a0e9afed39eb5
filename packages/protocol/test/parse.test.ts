/**
 * Unit tests of the protocol package: the frame parsers (client data enters the server through parseAskFrame)
 * and the code tables of codes.ts, held to SPEC §5 and §9.
 */
import { describe, expect, it } from '@jest/globals';
import {
  Close,
  CloseCode,
  ErrorCode,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  httpStatus,
  isErrorCode,
  parseAskFrame,
  parseRetryAfter,
  parseServerFrame,
  rateLimitedClose,
  sessionEndClose,
  type SessionEndReason,
} from '../src/index.js';

const ask = (fields: Record<string, unknown>) => JSON.stringify({ id: 'a1', to: 'UserStore', type: 'GetOwn', payload: {}, ...fields });

/** Asserts a BAD_FRAME result with this echoed id (null when none could be read). */
function expectBadFrame(text: string, id: string | number | null): void {
  const r = parseAskFrame(text);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.id).toBe(id);
  expect(r.error.code).toBe(ErrorCode.BAD_FRAME);
  expect(typeof r.error.message).toBe('string');
  expect(r.error.message.length).toBeGreaterThan(0);
}

function expectOk(text: string) {
  const r = parseAskFrame(text);
  expect(r.ok).toBe(true);
  if (!r.ok) throw new Error('expected ok');
  return r.frame;
}

describe('parseAskFrame: whole-frame shape', () => {
  it('accepts a well-formed ask and returns exactly id, to, type, payload', () => {
    const r = parseAskFrame(JSON.stringify({ id: '7', to: 'UserStore', type: 'GetOwn', payload: { a: 1 } }));
    expect(r).toEqual({ ok: true, frame: { id: '7', to: 'UserStore', type: 'GetOwn', payload: { a: 1 } } });
  });

  it('drops unknown top-level fields', () => {
    const frame = expectOk(ask({ extra: 1, ok: true, event: 'x' }));
    expect(Object.keys(frame).sort()).toEqual(['id', 'payload', 'to', 'type']);
  });

  it('tolerates whitespace around the JSON text', () => {
    expect(expectOk(`  \n${ask({})}\t `).id).toBe('a1');
  });

  it.each([
    ['not JSON', 'hello'],
    ['empty text', ''],
    ['truncated JSON', '{"id":"1","to":"UserStore"'],
    ['JSON with a trailing comma', '{"id":"1","to":"UserStore","type":"GetOwn",}'],
    ['single quotes', "{'id':'1'}"],
  ])('%s → BAD_FRAME with id null', (_name, text) => expectBadFrame(text, null));

  it.each([
    ['an array', '[{"id":"1","to":"UserStore","type":"GetOwn"}]'],
    ['a number', '42'],
    ['a string', '"{\\"id\\":1}"'],
    ['null', 'null'],
    ['true', 'true'],
    ['false', 'false'],
  ])('a JSON %s (not an object) → BAD_FRAME with id null', (_name, text) => expectBadFrame(text, null));
});

describe('parseAskFrame: id', () => {
  it.each([
    ['a string', 'x', 'x'],
    ['a one-character string', '1', '1'],
    ['a positive integer', 7, 7],
    ['zero', 0, 0],
    ['a negative integer', -3, -3],
    ['the largest safe integer', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [`a string of ${MAX_ID_LENGTH} characters`, 'i'.repeat(MAX_ID_LENGTH), 'i'.repeat(MAX_ID_LENGTH)],
  ])('accepts %s', (_name, id, expected) => {
    expect(expectOk(ask({ id })).id).toBe(expected);
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['an empty string', ''],
    [`a string of ${MAX_ID_LENGTH + 1} characters`, 'i'.repeat(MAX_ID_LENGTH + 1)],
    ['a fraction', 1.5],
    ['an unsafe integer', 2 ** 53],
    ['true', true],
    ['an object', { x: 1 }],
    ['an array', ['1']],
  ])('id %s → BAD_FRAME with id null', (_name, id) => {
    const raw: Record<string, unknown> = { to: 'UserStore', type: 'GetOwn', payload: {} };
    if (id !== undefined) raw.id = id;
    expectBadFrame(JSON.stringify(raw), null);
  });

  it('an id given as 1e3 in the JSON text is the integer 1000', () => {
    expect(expectOk('{"id":1e3,"to":"UserStore","type":"GetOwn"}').id).toBe(1000);
  });

  it('reads only an own id: one behind a __proto__ key is not an id', () => {
    expectBadFrame('{"__proto__":{"id":"p1","to":"UserStore","type":"GetOwn"}}', null);
    expectBadFrame('{"to":"UserStore","type":"GetOwn","__proto__":{"id":"p1"}}', null);
  });
});

describe('parseAskFrame: to and type', () => {
  const goodNames = ['UserStore', 'A', 'a', 'Chat.Room-1_x', 'x'.repeat(MAX_NAME_LENGTH)];
  const badNames: Array<[string, unknown]> = [
    ['missing', undefined],
    ['null', null],
    ['a number', 5],
    ['an object', {}],
    ['an array', ['UserStore']],
    ['empty', ''],
    ['starting with a digit', '1Store'],
    ['starting with an underscore', '_Store'],
    ['__proto__', '__proto__'],
    ['with a space', 'User Store'],
    ['with a slash', 'User/Store'],
    ['with a colon', 'User:Store'],
    ['non-ASCII', 'Usér'],
    ['with a newline', 'User\nStore'],
    [`of ${MAX_NAME_LENGTH + 1} characters`, 'x'.repeat(MAX_NAME_LENGTH + 1)],
  ];

  it.each(goodNames)('accepts the name %s in to and in type', (name) => {
    const frame = expectOk(ask({ to: name, type: name }));
    expect(frame.to).toBe(name);
    expect(frame.type).toBe(name);
  });

  it.each(badNames)('to %s → BAD_FRAME with the id echoed', (_name, to) => {
    const raw: Record<string, unknown> = { id: 'k1', type: 'GetOwn' };
    if (to !== undefined) raw.to = to;
    expectBadFrame(JSON.stringify(raw), 'k1');
  });

  it.each(badNames)('type %s → BAD_FRAME with the id echoed', (_name, type) => {
    const raw: Record<string, unknown> = { id: 9, to: 'UserStore' };
    if (type !== undefined) raw.type = type;
    expectBadFrame(JSON.stringify(raw), 9);
  });

  it('names that are Object.prototype members pass the shape check (the registry answers them)', () => {
    // `constructor`, `toString`, `hasOwnProperty` are syntactically names; the registry's null-prototype
    // message table turns them into UNKNOWN_MESSAGE (tested over a socket in bad-input.test.ts).
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const frame = expectOk(ask({ to: name, type: name }));
      expect(frame.type).toBe(name);
    }
  });

  it('checks to before type (the first shape error decides the message, the id is echoed either way)', () => {
    const both = parseAskFrame(JSON.stringify({ id: 'z', to: 1, type: 2 }));
    const onlyType = parseAskFrame(JSON.stringify({ id: 'z', to: 'UserStore', type: 2 }));
    expect(both.ok || onlyType.ok).toBe(false);
    if (both.ok || onlyType.ok) return;
    expect(both.error.message).not.toBe(onlyType.error.message);
    expect(both.id).toBe('z');
    expect(onlyType.id).toBe('z');
  });
});

describe('parseAskFrame: payload', () => {
  it('a missing payload is {}', () => {
    expect(expectOk('{"id":"1","to":"UserStore","type":"GetOwn"}').payload).toEqual({});
  });

  it('a null payload is {}', () => {
    expect(expectOk(ask({ payload: null })).payload).toEqual({});
  });

  it('an object payload is passed on as parsed (nested values untouched)', () => {
    const payload = { a: [1, { b: null }], c: 'd', e: { f: true } };
    expect(expectOk(ask({ payload })).payload).toEqual(payload);
  });

  it.each([
    ['an array', []],
    ['a non-empty array', [{ a: 1 }]],
    ['a string', 'x'],
    ['an empty string', ''],
    ['a number', 0],
    ['true', true],
    ['false', false],
  ])('payload %s → BAD_FRAME with the id echoed', (_name, payload) => {
    expectBadFrame(ask({ id: 'p', payload }), 'p');
  });

  it('__proto__ and constructor keys in a payload stay plain data and pollute nothing', () => {
    const text =
      '{"id":"x","to":"UserStore","type":"Update","payload":{"__proto__":{"role":"admin","polluted":1},"constructor":{"prototype":{"polluted2":1}},"uid":"u"}}';
    const frame = expectOk(text);
    const payload = frame.payload as Record<string, unknown>;
    // The payload is an ordinary object whose prototype is still Object.prototype (JSON.parse makes __proto__ an own key).
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    expect((payload as { role?: unknown }).role).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted2).toBeUndefined();
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('a __proto__ key at the top level neither supplies fields nor pollutes', () => {
    expectBadFrame('{"__proto__":{"payload":{}},"id":"q"}', 'q');
    expect(({} as Record<string, unknown>).payload).toBeUndefined();
  });
});

describe('parseServerFrame', () => {
  it('reads an ok reply', () => {
    expect(parseServerFrame('{"id":"7","ok":true,"result":{"a":1}}')).toEqual({ id: '7', ok: true, result: { a: 1 } });
    expect(parseServerFrame('{"id":3,"ok":true,"result":null}')).toEqual({ id: 3, ok: true, result: null });
  });

  it('an ok reply without a result has result undefined', () => {
    expect(parseServerFrame('{"id":"7","ok":true}')).toEqual({ id: '7', ok: true, result: undefined });
  });

  it('rejects an ok reply without a valid id', () => {
    expect(parseServerFrame('{"ok":true,"result":1}')).toBeNull();
    expect(parseServerFrame('{"id":null,"ok":true,"result":1}')).toBeNull();
    expect(parseServerFrame('{"id":"","ok":true,"result":1}')).toBeNull();
    expect(parseServerFrame('{"id":1.5,"ok":true,"result":1}')).toBeNull();
    expect(parseServerFrame('{"id":{},"ok":true,"result":1}')).toBeNull();
  });

  it('reads an error reply, with an id or with id null', () => {
    expect(parseServerFrame('{"id":"7","ok":false,"error":{"code":"FORBIDDEN","message":"no"}}')).toEqual({
      id: '7',
      ok: false,
      error: { code: 'FORBIDDEN', message: 'no' },
    });
    expect(parseServerFrame('{"id":null,"ok":false,"error":{"code":"BAD_FRAME","message":"bad"}}')).toEqual({
      id: null,
      ok: false,
      error: { code: 'BAD_FRAME', message: 'bad' },
    });
  });

  it('an error reply with an unreadable id gets id null; a missing message becomes ""; a non-string one is stringified', () => {
    expect(parseServerFrame('{"ok":false,"error":{"code":"BAD_FRAME"}}')).toEqual({ id: null, ok: false, error: { code: 'BAD_FRAME', message: '' } });
    expect(parseServerFrame('{"id":[1],"ok":false,"error":{"code":"X","message":5}}')).toEqual({ id: null, ok: false, error: { code: 'X', message: '5' } });
  });

  it('rejects an error reply whose error is not an object with a string code', () => {
    expect(parseServerFrame('{"id":"1","ok":false}')).toBeNull();
    expect(parseServerFrame('{"id":"1","ok":false,"error":"FORBIDDEN"}')).toBeNull();
    expect(parseServerFrame('{"id":"1","ok":false,"error":{"code":403}}')).toBeNull();
    expect(parseServerFrame('{"id":"1","ok":false,"error":[{"code":"X"}]}')).toBeNull();
  });

  it('reads a push', () => {
    expect(parseServerFrame('{"event":"UserChanged","from":"UserStore","payload":{"user":{}}}')).toEqual({
      event: 'UserChanged',
      from: 'UserStore',
      payload: { user: {} },
    });
  });

  it('a push needs both event and from as strings', () => {
    expect(parseServerFrame('{"event":"UserChanged","payload":{}}')).toBeNull();
    expect(parseServerFrame('{"from":"UserStore","payload":{}}')).toBeNull();
    expect(parseServerFrame('{"event":1,"from":"UserStore","payload":{}}')).toBeNull();
  });

  it('ok must be the boolean true or false', () => {
    expect(parseServerFrame('{"id":"1","ok":"true","result":1}')).toBeNull();
    expect(parseServerFrame('{"id":"1","ok":1,"result":1}')).toBeNull();
    expect(parseServerFrame('{"id":"1","result":1}')).toBeNull();
  });

  it.each([['not JSON', 'nope'], ['empty', ''], ['an array', '[]'], ['a number', '1'], ['null', 'null'], ['a string', '"x"']])(
    '%s → null',
    (_name, text) => expect(parseServerFrame(text)).toBeNull(),
  );

  it('round-trips every reply the server can build', () => {
    const frames = [
      { id: 'a', ok: true as const, result: { items: [], nextCursor: null } },
      { id: 0, ok: false as const, error: { code: ErrorCode.RATE_LIMITED, message: 'slow down' } },
      { id: null, ok: false as const, error: { code: ErrorCode.BAD_FRAME, message: 'bad' } },
      { event: 'SessionChanged', from: 'SessionStore', payload: { change: 'created' } },
    ];
    for (const f of frames) expect(parseServerFrame(JSON.stringify(f))).toEqual(f);
  });
});

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

  it('sessionEndClose maps each 4001 reason to its table entry', () => {
    for (const r of ['revoked', 'expired', 'evicted', 'logout'] as SessionEndReason[]) {
      expect(sessionEndClose(r)).toBe(Close[r]);
      expect(sessionEndClose(r)).toEqual({ code: 4001, reason: r, reconnect: 'no' });
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
