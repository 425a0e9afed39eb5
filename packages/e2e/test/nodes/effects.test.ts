/**
 * Two and three nodes behave as one (SPEC §8): a session made on one node serves sockets and asks on the others, and
 * what one node does to a user reaches that user's sockets on every node before the call that caused it answers —
 * a block closes them 4003 `blocked`, a logout 4001 `logout` — a role change applies to the next ask on any node, and
 * a push published on one node reaches the subscribers on every node.
 *
 * Nodes A, B and C are 0, 1 and 2 of three; with two nodes C is A again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually, expectError, expectOk, post, TestClient } from '@greenroom/server/testing';
import { adminSocket, closedBeforeAnswer, createUser, describeNodes, login, nodesFor, type User } from './cluster.js';

/** A race runs this many times, each with a fresh user. */
const ROUNDS = 5;

describeNodes('several nodes, one Redis', () => {
  describe.each([2, 3])('%i nodes', (n) => {
    const nodes = nodesFor(n);
    const [A, B, C] = [0, 1, 2 % n];
    let admin: TestClient;
    const open: TestClient[] = [];

    /** A socket of `token` on node i, closed after the file. */
    const connect = async (i: number, token: string) => {
      const socket = await TestClient.connect(nodes().url(i), token);
      open.push(socket);
      return socket;
    };

    beforeAll(async () => {
      admin = await adminSocket(nodes().url(A));
      open.push(admin);
    });
    afterAll(async () => {
      await Promise.all(open.map((s) => s.close()));
    });

    it('a login on A opens a socket on B; an ask on C sees the session and both its sockets', async () => {
      const user = await createUser(admin);
      const session = await login(nodes().url(A), user);
      const onB = await connect(B, session.accessToken);
      const onC = await connect(C, session.accessToken);
      expect(await expectOk(onB.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid, username: user.username });
      const own = await expectOk(onC.ask('SessionStore', 'GetOwn'));
      expect(own.items).toHaveLength(1);
      expect(own.items[0]).toMatchObject({ sid: session.sid, connections: 2 });
    });

    it(`Block on A closes the user's sockets on B and C with 4003 'blocked' before A answers (${ROUNDS} times)`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const user = await createUser(admin);
        const session = await login(nodes().url(B), user);
        const sockets = [await connect(B, session.accessToken), await connect(C, session.accessToken)];

        const { answer, closedFirst } = await closedBeforeAnswer(sockets, admin.ask('UserStore', 'Block', { uid: user.uid }));
        expect(await expectOk(answer)).toMatchObject({ uid: user.uid, blocked: true });
        expect(closedFirst).toEqual([true, true]);
        expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([
          { code: 4003, reason: 'blocked' },
          { code: 4003, reason: 'blocked' },
        ]);

        // Blocked everywhere: no node lets the user in again.
        for (const i of [A, B, C]) {
          await expectError(post(nodes().url(i), '/auth/login', { username: user.username, password: user.password }), 'BLOCKED', { status: 403 });
          await expectError(post(nodes().url(i), '/auth/refresh', { refreshToken: session.refreshToken }), 'SESSION_REVOKED', { status: 401 });
          await expect(TestClient.connect(nodes().url(i), session.accessToken)).rejects.toMatchObject({ status: 401 });
        }
      }
    });

    it(`a logout on B closes the session's sockets on A and C with 4001 'logout' before B answers; the user's other session stays (${ROUNDS} times)`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const user = await createUser(admin);
        const ending = await login(nodes().url(A), { ...user, deviceId: 'device-ending' });
        const staying = await login(nodes().url(C), { ...user, deviceId: 'device-staying' });
        const sockets = [await connect(A, ending.accessToken), await connect(C, ending.accessToken)];
        const other = await connect(A, staying.accessToken);

        const logout = post(nodes().url(B), '/auth/logout', undefined, { headers: { Authorization: `Bearer ${ending.accessToken}` } });
        const { answer, closedFirst } = await closedBeforeAnswer(sockets, logout);
        expect(answer.status).toBe(204);
        expect(closedFirst).toEqual([true, true]);
        expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([
          { code: 4001, reason: 'logout' },
          { code: 4001, reason: 'logout' },
        ]);

        expect(await expectOk(other.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid });
        const own = await expectOk(other.ask('SessionStore', 'GetOwn'));
        expect(own.items.map((s: { sid: string }) => s.sid)).toEqual([staying.sid]);
        await expectError(post(nodes().url(C), '/auth/refresh', { refreshToken: ending.refreshToken }), 'SESSION_REVOKED', { status: 401 });
      }
    });

    it('a push published on A reaches subscribers on B and C: UserChanged of an update made on A', async () => {
      const watchers = [await adminSocket(nodes().url(B)), await adminSocket(nodes().url(C))];
      open.push(...watchers);
      for (const w of watchers) await expectOk(w.ask('UserStore', 'Subscribe'));
      const user = await createUser(admin);
      const displayName = `renamed on A ${user.uid.slice(0, 8)}`;
      await expectOk(admin.ask('UserStore', 'Update', { uid: user.uid, displayName }));
      for (const w of watchers) {
        await eventually(() => w.pushes.some((p) => p.event === 'UserChanged' && (p.payload as { user: { displayName: string } }).user.displayName === displayName), {
          what: 'UserChanged on every node',
        });
      }
    });

    it(`a role change on A applies to the next ask on B, both ways (${ROUNDS} times)`, async () => {
      const user: User = await createUser(admin);
      const session = await login(nodes().url(A), user);
      const onB = await connect(B, session.accessToken);
      await expectError(onB.ask('UserStore', 'GetAll'), 'FORBIDDEN');
      for (let round = 0; round < ROUNDS; round++) {
        expect(await expectOk(admin.ask('UserStore', 'Update', { uid: user.uid, role: 'admin' }))).toMatchObject({ role: 'admin' });
        expect(await expectOk(onB.ask('UserStore', 'GetAll'))).toMatchObject({ items: expect.any(Array) });
        expect(await expectOk(admin.ask('UserStore', 'Update', { uid: user.uid, role: 'user' }))).toMatchObject({ role: 'user' });
        await expectError(onB.ask('UserStore', 'GetAll'), 'FORBIDDEN');
      }
    });
  });
});
