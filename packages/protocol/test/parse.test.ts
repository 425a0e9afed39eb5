/**
 * Unit tests of the protocol package's frame parsers: client data enters the server through parseAskFrame.
 * The code tables are held to docs/protocol.md in codes.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { ErrorCode, MAX_ID_LENGTH, MAX_NAME_LENGTH, parseAskFrame, parseServerFrame } from '../src/index.js';

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

  it('reads a push, with its topic', () => {
    expect(parseServerFrame('{"event":"Posted","from":"Room","topic":"room-1","payload":{"text":"hi"}}')).toEqual({
      event: 'Posted',
      from: 'Room',
      topic: 'room-1',
      payload: { text: 'hi' },
    });
  });

  it("reads a push without a topic as one on the actor's own", () => {
    expect(parseServerFrame('{"event":"UserChanged","from":"UserStore","payload":{"user":{}}}')).toEqual({
      event: 'UserChanged',
      from: 'UserStore',
      topic: 'UserStore',
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
      { event: 'SessionChanged', from: 'SessionStore', topic: 'SessionStore', payload: { change: 'created' } },
    ];
    for (const f of frames) expect(parseServerFrame(JSON.stringify(f))).toEqual(f);
  });
});
