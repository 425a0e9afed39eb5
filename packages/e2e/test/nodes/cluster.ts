/**
 * What the multi-node test files share: their nodes (started before a file's tests, stopped and their Redis keys
 * deleted after), users made by the admin, password logins, and the order in which closes and answers reach the test.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectOk, loginWithPassword, TestClient, type Target } from '@greenroom/server/testing';
import { ADMIN, startNodes, type Nodes, type NodesOptions } from './nodes.js';
import { deleteKeys, redisUnavailable, testPrefix } from './redis.js';

/** Starting several servers and waiting for them takes longer than jest's default. */
export const SETUP_TIMEOUT_MS = 120_000;

/**
 * `describe`, or, where a needed service is missing, `describe.skip` with the reason in the title (the report
 * shows it).
 */
export function describeIf(unavailable: string | null): (name: string, fn: () => void) => void {
  return unavailable ? (name, fn) => describe.skip(`${name} (skipped: ${unavailable})`, fn) : describe;
}

/** `describe` for tests that need the nodes' Redis. */
export const describeNodes = describeIf(redisUnavailable());

/** Where the nodes' logs of the last run are kept: .artifacts/nodes/<test file>-<n>-node<i>.log. */
const LOGS = fileURLToPath(new URL('../../../../.artifacts/nodes/', import.meta.url));

/**
 * Nodes for the tests of one `describe`: started in its beforeAll, stopped in its afterAll, then every key of their
 * prefix deleted. The getter returns them once started.
 */
export function nodesFor(n: number, env?: NodesOptions['env'], args?: NodesOptions['args']): () => Nodes {
  const prefix = testPrefix();
  let nodes: Nodes | undefined;
  beforeAll(async () => {
    await mkdir(LOGS, { recursive: true });
    const logs = join(LOGS, `${basename(expect.getState().testPath ?? 'nodes', '.test.ts')}-${n}`);
    nodes = await startNodes(n, { prefix, logs, ...(env ? { env } : {}), ...(args ? { args } : {}) });
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await nodes?.stop();
    await deleteKeys(prefix);
  }, SETUP_TIMEOUT_MS);
  return () => {
    if (!nodes) throw new Error('the nodes did not start');
    return nodes;
  };
}

export interface Login {
  uid: string;
  sid: string;
  role: string;
  accessToken: string;
  refreshToken: string;
}

/** A password login that must succeed. */
export async function login(target: Target, credentials: { username: string; password: string; deviceId?: string }): Promise<Login> {
  const res = await loginWithPassword(target, credentials);
  if (res.status !== 200) throw new Error(`login of ${credentials.username} failed: ${res.status} ${res.text}`);
  return res.body as Login;
}

/** A socket of the admin on `target`. */
export async function adminSocket(target: Target): Promise<TestClient> {
  return TestClient.connect(target, (await login(target, ADMIN)).accessToken);
}

export interface User {
  uid: string;
  username: string;
  password: string;
}

let made = 0;

/** Makes a user through an admin's socket (UserStore.Create). */
export async function createUser(admin: TestClient, role = 'user'): Promise<User> {
  const username = `u${process.pid}x${++made}x${Math.random().toString(36).slice(2, 8)}`;
  const password = `password of ${username}`;
  const { uid } = await expectOk<{ uid: string }>(admin.ask('UserStore', 'Create', { username, password, role }));
  return { uid, username, password };
}

/**
 * Whether the server had closed `socket` before now: an ask sent now goes unanswered on a socket the server has
 * closed (a closing socket sends nothing more), and is answered on one it has not. It goes down the same TCP
 * connection as the close, so it sees the server's order of events. (Which of two connections this process reads
 * first is no evidence: loopback delivery under load can hand it a later packet of one before an earlier of another.)
 */
export function closedByNow(socket: TestClient): Promise<boolean> {
  return Promise.race([socket.ask('UserStore', 'GetOwn').then(() => false), socket.closed.then(() => true)]);
}

/** Awaits `call`; then which of `sockets` the servers had closed before its answer reached this process. */
export async function closedBeforeAnswer<T>(sockets: readonly TestClient[], call: Promise<T>): Promise<{ answer: T; closedFirst: boolean[] }> {
  const answer = await call;
  return { answer, closedFirst: await Promise.all(sockets.map(closedByNow)) };
}

/** Resolves with `promise`, or rejects after `ms` saying what did not happen. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The URL of node k mod n: the k-th call of a burst goes to each node in turn. */
export function spread(nodes: Nodes, k: number): string {
  return nodes.url(k % nodes.size);
}
