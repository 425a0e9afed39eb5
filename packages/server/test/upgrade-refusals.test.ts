/**
 * Refused upgrades (docs/protocol.md): a WebSocket upgrade that fails authentication, or whose session has ended, or
 * whose user is blocked, or that asks for a path other than /ws, gets a plain HTTP answer with the JSON error body
 * and a destroyed socket — and has no side effect at all: no record in the store changes (byte for byte, on disk
 * too), and no connection is registered.
 *
 * Upgrades are sent with node:http directly, so a test sees the status, the headers and the body as sent.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { SignJWT, UnsecuredJWT } from 'jose';
import type { SessionRecord, UserRecord } from '../src/actors/records.js';
import { deriveKeys } from '../src/auth/secret.js';
import { AUDIENCE, ISSUER } from '../src/auth/tokens.js';
import { internals } from '../src/server.js';
import { eventually, issueSession, rawUpgrade, startTestServer, type TestServer } from '../src/testing/index.js';
import { storeContents, storeFileBytes } from './helpers.js';
import { SessionStore } from '../src/actors/session-store.js';
import { UserStore } from '../src/actors/user-store.js';

type Issued = Awaited<ReturnType<typeof issueSession>>;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  // A store with something in it (and on disk) from the start.
  await issueSession(server, { role: 'admin' });
});

afterAll(async () => {
  await server?.close();
});

/** Every record of the store's collections, their counts, the store file's bytes, and the data dir's listing. */
async function snapshot() {
  return {
    records: JSON.stringify(await storeContents(server)),
    file: await storeFileBytes(server),
    files: (await readdir(server.dataDir)).sort(),
  };
}

const liveConnections = async () => (await server.ask(SessionStore.Stats)).connections;

/** Signs an access token the way the server would, with any of its parts replaced. */
async function accessToken(
  session: Issued,
  options: { key?: Uint8Array; expSeconds?: number; issuer?: string; audience?: string; sid?: string; role?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const exp = options.expSeconds ?? now + 600;
  return new SignJWT({ sid: options.sid ?? session.sid, role: options.role ?? session.role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(session.uid)
    .setJti(randomUUID())
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt(Math.min(now, exp - 60))
    .setExpirationTime(exp)
    .sign(options.key ?? deriveKeys(server.config.secret!).jwt);
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Replaces one character in the middle of a JWT part (0 header, 1 claims, 2 signature). */
function tamper(token: string, part: number): string {
  const parts = token.split('.');
  const p = parts[part]!;
  const i = Math.floor(p.length / 2);
  parts[part] = p.slice(0, i) + (p[i] === 'A' ? 'B' : 'A') + p.slice(i + 1);
  return parts.join('.');
}

interface Case {
  name: string;
  status: number;
  code: string;
  /** Sets the scene (before the snapshot) and returns the request to send. */
  prepare(): Promise<{ path?: string; headers?: Record<string, string> }>;
}

const cases: Case[] = [
  { name: 'no credential', status: 401, code: 'UNAUTHENTICATED', prepare: async () => ({}) },
  {
    name: 'an Authorization header that is not Bearer',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => ({ headers: { Authorization: `Basic ${Buffer.from('admin:password').toString('base64')}` } }),
  },
  { name: 'a Bearer header without a token', status: 401, code: 'INVALID_TOKEN', prepare: async () => ({ headers: { Authorization: 'Bearer ' } }) },
  {
    name: 'a Bearer header with two tokens',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => {
      const s = await issueSession(server);
      return { headers: { Authorization: `Bearer ${s.accessToken} ${s.accessToken}` } };
    },
  },
  { name: 'a bearer token that is not a JWT', status: 401, code: 'INVALID_TOKEN', prepare: async () => ({ headers: bearer('not-a-jwt') }) },
  {
    name: 'a JWT signed with another key',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => ({ headers: bearer(await accessToken(await issueSession(server), { key: new Uint8Array(randomBytes(32)) })) }),
  },
  {
    name: 'a JWT whose signature was tampered with',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => ({ headers: bearer(tamper((await issueSession(server)).accessToken, 2)) }),
  },
  {
    name: 'a JWT whose claims were changed under the old signature',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => {
      const s = await issueSession(server);
      const [header, , signature] = s.accessToken.split('.');
      const claims = JSON.parse(Buffer.from(s.accessToken.split('.')[1]!, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
      return { headers: bearer(`${header}.${forged}.${signature}`) };
    },
  },
  {
    name: 'an unsigned JWT (alg none)',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => {
      const s = await issueSession(server);
      const token = new UnsecuredJWT({ sid: s.sid, role: 'admin' })
        .setSubject(s.uid)
        .setJti(randomUUID())
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('10m')
        .encode();
      return { headers: bearer(token) };
    },
  },
  {
    name: 'a JWT signed with the server’s key for another audience',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => ({ headers: bearer(await accessToken(await issueSession(server), { audience: 'someone-else' })) }),
  },
  {
    name: 'an expired JWT signed with the server’s key',
    status: 401,
    code: 'TOKEN_EXPIRED',
    prepare: async () => ({ headers: bearer(await accessToken(await issueSession(server), { expSeconds: Math.floor(Date.now() / 1000) - 120 })) }),
  },
  {
    name: 'a valid JWT for a session that does not exist',
    status: 401,
    code: 'INVALID_TOKEN',
    prepare: async () => ({ headers: bearer(await accessToken(await issueSession(server), { sid: randomUUID() })) }),
  },
  {
    name: 'a revoked session',
    status: 401,
    code: 'SESSION_REVOKED',
    prepare: async () => {
      const s = await issueSession(server);
      await server.ask(SessionStore.Revoke, { sid: s.sid });
      return { headers: bearer(s.accessToken) };
    },
  },
  {
    name: 'an expired session',
    status: 401,
    code: 'SESSION_EXPIRED',
    prepare: async () => {
      const s = await issueSession(server);
      const record = (await internals(server).store.get<SessionRecord>('sessions', s.sid))!;
      await internals(server).store.put('sessions', s.sid, { ...record, expiresAt: Date.now() - 1000 });
      return { headers: bearer(s.accessToken) };
    },
  },
  {
    // The moment between a block's user write and the revocation of its sessions (or, on another node, before
    // that node learns of it): the session is still live, the user is blocked.
    name: 'a blocked user whose session is still live',
    status: 403,
    code: 'BLOCKED',
    prepare: async () => {
      const s = await issueSession(server);
      const user = (await internals(server).store.get<UserRecord>('users', s.uid))!;
      await internals(server).store.put('users', s.uid, { ...user, blocked: true });
      return { headers: bearer(s.accessToken) };
    },
  },
  {
    // UserStore.Block revokes every session of the user; the session check comes first, as in refresh (docs/security.md).
    name: 'a user blocked through UserStore.Block (its sessions revoked by the block)',
    status: 401,
    code: 'SESSION_REVOKED',
    prepare: async () => {
      const s = await issueSession(server);
      await server.ask(UserStore.Block, { uid: s.uid });
      return { headers: bearer(s.accessToken) };
    },
  },
  ...['/', '/other', '/ws/', '/ws/extra', '/WS'].map(
    (path): Case => ({
      name: `a valid token on the path ${path}`,
      status: 404,
      code: 'NOT_FOUND',
      prepare: async () => ({ path, headers: bearer((await issueSession(server)).accessToken) }),
    }),
  ),
];

describe('a refused upgrade', () => {
  it.each(cases.map((c) => [c.name, c.status, c.code, c] as const))(
    'for %s is a plain %i %s, and changes and registers nothing',
    async (_name, status, code, c) => {
      const request = await c.prepare();
      const before = await snapshot();

      const answer = await rawUpgrade(server, undefined, request);

      expect(answer.status).toBe(status);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ error: { code, message: expect.any(String) } });
      expect(answer.socketClosed).toBe(true);

      const after = await snapshot();
      expect(after.records).toBe(before.records);
      expect(after.file.equals(before.file)).toBe(true);
      expect(after.files).toEqual(before.files);
      expect(await liveConnections()).toBe(0);
    },
  );

  it('is not a quirk of the helper: the same request with a live session is upgraded (101) and registered', async () => {
    const s = await issueSession(server);
    const answer = await rawUpgrade(server, s.accessToken);
    expect(answer.status).toBe(101);
    expect(await liveConnections()).toBe(1);
    const closed = new Promise((r) => answer.socket!.once('close', r));
    answer.socket!.destroy();
    await closed;
    // Its registration is removed once the server sees the socket go.
    await eventually(async () => (await liveConnections()) === 0, { intervalMs: 0 });
  });
});
