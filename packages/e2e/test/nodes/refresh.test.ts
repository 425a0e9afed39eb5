/**
 * Refresh across three nodes (SPEC §3, §8): 200 concurrent refreshes of one refresh token, spread over the nodes, make
 * one rotation and every caller gets the same new pair; the token just replaced yields that pair again on any node
 * within the grace period; presented after it, it is a reuse — 401 `REFRESH_REUSED` — and the whole session is
 * revoked, its sockets on every node closed 4001 `revoked` before that refresh answers.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { expectError, expectOk, post, TestClient } from '@greenroom/server/testing';
import { adminSocket, closedBeforeAnswer, createUser, describeNodes, login, nodesFor, spread, type User } from './cluster.js';

/** Long enough for a burst of 200 refreshes to be answered inside it, short enough to wait out once. */
const GRACE_S = 10;
const CALLERS = 200;
const ROUNDS = 5;

interface Pair {
  accessToken: string;
  refreshToken: string;
}

describeNodes('refresh on three nodes', () => {
  const nodes = nodesFor(3, { GREENROOM_REFRESH_GRACE_S: String(GRACE_S) });
  let admin: TestClient;
  let user: User;
  const open: TestClient[] = [];

  beforeAll(async () => {
    admin = await adminSocket(nodes().url(0));
    open.push(admin);
    user = await createUser(admin);
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

  const refresh = (node: string, refreshToken: string) => post(node, '/auth/refresh', { refreshToken });

  it(`${CALLERS} concurrent refreshes of one token over three nodes: one rotation, the same pair to every caller (${ROUNDS} rounds)`, async () => {
    const session = await login(nodes().url(0), user);
    let token = session.refreshToken;
    const seen = new Set<string>([token]);
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(Array.from({ length: CALLERS }, (_, k) => refresh(spread(nodes(), k + round), token)));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      const pairs = new Set(answers.map((a) => JSON.stringify({ accessToken: a.body.accessToken, refreshToken: a.body.refreshToken })));
      expect(pairs.size).toBe(1);
      const pair = JSON.parse([...pairs][0]!) as Pair;
      expect(seen.has(pair.refreshToken)).toBe(false);
      seen.add(pair.refreshToken);

      // Within the grace period the replaced token yields that same pair again, on every node.
      for (let i = 0; i < 3; i++) {
        const again = await refresh(nodes().url(i), token);
        expect(again.status).toBe(200);
        expect({ accessToken: again.body.accessToken, refreshToken: again.body.refreshToken }).toEqual(pair);
      }
      // The new pair is the session's: its access token opens a socket on any node.
      const socket = await TestClient.connect(nodes().url(round % 3), pair.accessToken);
      open.push(socket);
      expect(await expectOk(socket.ask('UserStore', 'GetOwn'))).toMatchObject({ uid: user.uid });
      token = pair.refreshToken;
    }
    // Still one session: the rotations made no other.
    const own = await expectOk(open[open.length - 1]!.ask('SessionStore', 'GetOwn'));
    expect(own.items.map((s: { sid: string }) => s.sid)).toEqual([session.sid]);
  });

  it("a replaced token presented after the grace period revokes the session and closes its sockets on every node with 4001 'revoked' before it answers", async () => {
    const session = await login(nodes().url(1), { ...user, deviceId: 'device-reused' });
    const sockets = await Promise.all([0, 1, 2].map((i) => TestClient.connect(nodes().url(i), session.accessToken)));
    open.push(...sockets);
    const rotated = await refresh(nodes().url(2), session.refreshToken);
    expect(rotated.status).toBe(200);

    // Waiting out the grace period is the scenario itself, not a bound on how fast anything is.
    await new Promise((r) => setTimeout(r, (GRACE_S + 1) * 1000));

    const { answer, closedFirst } = await closedBeforeAnswer(sockets, refresh(nodes().url(0), session.refreshToken));
    await expectError(answer, 'REFRESH_REUSED', { status: 401 });
    expect(closedFirst).toEqual([true, true, true]);
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual(sockets.map(() => ({ code: 4001, reason: 'revoked' })));

    // The whole family is over, on every node: the newest token too, and every access token of the session.
    for (let i = 0; i < 3; i++) {
      await expectError(refresh(nodes().url(i), rotated.body.refreshToken), 'SESSION_REVOKED', { status: 401 });
      await expect(TestClient.connect(nodes().url(i), rotated.body.accessToken)).rejects.toMatchObject({ status: 401 });
    }
  }, 60_000);
});
