/**
 * A node killed with SIGKILL (SPEC §8 Faults): its clients reconnect to another node and keep working, and nothing it
 * registered blocks anyone — a block of a user whose sockets were on it answers, and once its lease has run out its
 * dead connections no longer count against the user's connection quota.
 *
 * The client reaches the nodes through a TCP front that fails over as a load balancer does (B first, A when B no
 * longer accepts connections). Node A is 0, node B is 1.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createClient, login as clientLogin, type GreenroomClient } from '@greenroom/client';
import { expectError, expectOk, post, refusedUpgrade, TestClient } from '@greenroom/server/testing';
import { adminSocket, createUser, describeNodes, login, nodesFor, type User } from './cluster.js';
import { TcpProxy } from './tcp-proxy.js';

const A = 0;
const B = 1;
const LEASE_S = 2;
const MAX_PER_USER = 4;

describeNodes('a node killed with SIGKILL', () => {
  const nodes = nodesFor(2, { GREENROOM_NODE_LEASE_S: String(LEASE_S), GREENROOM_MAX_CONNECTIONS_PER_USER: String(MAX_PER_USER) });
  let front: TcpProxy;
  let admin: TestClient;
  let user: User;
  let client: GreenroomClient;
  const states: string[] = [];
  const open: TestClient[] = [];

  beforeAll(async () => {
    front = await TcpProxy.start([nodes().port(B), nodes().port(A)]);
    admin = await adminSocket(nodes().url(A));
    open.push(admin);
    user = await createUser(admin);
  });
  afterAll(async () => {
    client?.close();
    await Promise.all(open.map((s) => s.close()));
    await front?.close();
  });

  it("its clients reconnect to another node and keep working; its registrations block nothing once its lease is over", async () => {
    const url = `http://127.0.0.1:${front.port}`;
    const tokens = await clientLogin(url, user);
    client = createClient({ url, auth: { mode: 'tokens', tokens }, backoff: { baseMs: 50, capMs: 500 } });
    for (const state of ['open', 'reconnecting'] as const) client.on(state, () => states.push(state));
    await client.connect();
    expect(await client.ask<{ uid: string }>('UserStore', 'GetOwn')).toMatchObject({ uid: user.uid });

    // The user's quota filled on B: the client's socket and three more.
    for (let k = 1; k < MAX_PER_USER; k++) open.push(await TestClient.connect(nodes().url(B), tokens.accessToken));
    const full = await refusedUpgrade(nodes().url(A), tokens.accessToken);
    await expectError(full, 'RATE_LIMITED', { status: 429 });

    // Another user whose only sockets are on B.
    const other = await createUser(admin);
    const otherSession = await login(nodes().url(B), other);
    const otherSockets = [await TestClient.connect(nodes().url(B), otherSession.accessToken), await TestClient.connect(nodes().url(B), otherSession.accessToken)];

    expect(await nodes().kill(B, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    for (const s of otherSockets) expect((await s.closed).code).toBe(1006);

    // A block on A of a user whose sockets were on the dead node still answers, and holds everywhere left.
    expect(await expectOk(admin.ask('UserStore', 'Block', { uid: other.uid }))).toMatchObject({ blocked: true });
    await expectError(post(nodes().url(A), '/auth/login', { username: other.username, password: other.password }), 'BLOCKED', { status: 403 });

    // An ask made now waits for the client's reconnect, which lands on A once B's registrations have expired.
    expect(await client.ask<{ uid: string }>('UserStore', 'GetOwn', {}, { timeoutMs: 60_000 })).toMatchObject({ uid: user.uid });
    expect(client.state).toBe('open');
    expect(states.slice(0, 3)).toEqual(['open', 'reconnecting', 'open']);
    await client.refresh();
    expect(await client.ask<{ uid: string }>('UserStore', 'GetOwn')).toMatchObject({ uid: user.uid });

    // The whole quota is the user's again: the client's socket and three more on A, and not one more.
    for (let k = 1; k < MAX_PER_USER; k++) open.push(await TestClient.connect(nodes().url(A), tokens.accessToken));
    await expectError(refusedUpgrade(nodes().url(A), tokens.accessToken), 'RATE_LIMITED', { status: 429 });
    const own = await client.ask<{ items: Array<{ sid: string; connections: number }> }>('SessionStore', 'GetOwn');
    expect(own.items).toEqual([expect.objectContaining({ sid: tokens.sid, connections: MAX_PER_USER })]);
  }, 120_000);
});
