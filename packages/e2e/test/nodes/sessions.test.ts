/**
 * Sessions and tickets across three nodes (SPEC §3, §8):
 * - at most 20 live sessions per user, counted over every node: one more login, on any node, evicts the least
 *   recently used session (a refresh on any node makes one recently used), and its socket, on whichever node holds
 *   it, is closed 4001 `evicted` before that login answers — concurrent logins on several nodes included;
 * - a ticket opens one socket across all nodes: of 20 concurrent upgrades with it, spread over the nodes, exactly
 *   one gets the 101.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { expectError, expectOk, post, rawUpgrade, TestClient } from '@greenroom/server/testing';
import { adminSocket, closedByNow, createUser, describeNodes, login, nodesFor, spread, type Login, type User } from './cluster.js';

const CAP = 20;
/** Rounds of concurrent logins past the cap, each evicting this many sessions. */
const ROUNDS = 3;
const BURST = 5;
const TICKET_ROUNDS = 10;
const UPGRADES = 20;

describeNodes('sessions and tickets on three nodes', () => {
  const nodes = nodesFor(3);
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

  it(`${CAP} sessions live; then ${ROUNDS} times ${BURST} concurrent logins on several nodes each evict the least recently used, closing its socket wherever it is before the login answers`, async () => {
    const logins: Login[] = [];
    const sockets: TestClient[] = [];
    /** Log in (on node k), and open the session's socket on the next node. */
    const loginWithSocket = async (k: number): Promise<number> => {
      const session = await login(spread(nodes(), k), { ...user, deviceId: `device-${k}` });
      const socket = await TestClient.connect(spread(nodes(), k + 1), session.accessToken);
      open.push(socket);
      logins[k] = session;
      sockets[k] = socket;
      return k;
    };

    for (let k = 0; k < CAP; k++) await loginWithSocket(k);
    expect(sockets.map((s) => s.ws.readyState)).toEqual(sockets.map(() => WebSocket.OPEN));

    // Sessions 0 and 1 refreshed (on nodes 2 and 0): the least recently used are now 2, 3, 4, …
    for (const [k, node] of [[0, 2], [1, 0]] as const) {
      expect((await post(nodes().url(node), '/auth/refresh', { refreshToken: logins[k]!.refreshToken })).status).toBe(200);
    }
    const byUse = [...Array.from({ length: CAP - 2 }, (_, j) => j + 2), 0, 1];

    for (let round = 0; round < ROUNDS; round++) {
      const evicted = byUse.splice(0, BURST);
      const watched = evicted.map((k) => sockets[k]!);
      // When each login's answer arrives, how many of the sockets to evict the servers have closed.
      const closedAtAnswer: Array<Promise<number>> = [];
      const burst = Array.from({ length: BURST }, (_, j) => CAP + round * BURST + j);
      await Promise.all(
        burst.map((k) =>
          login(spread(nodes(), k), { ...user, deviceId: `device-${k}` }).then((session) => {
            closedAtAnswer.push(Promise.all(watched.map(closedByNow)).then((closed) => closed.filter(Boolean).length));
            logins[k] = session;
          }),
        ),
      );
      // Each login evicts one session before it answers: the n-th answer comes after at least n closes.
      expect((await Promise.all(closedAtAnswer)).map((closed, n) => closed >= n + 1)).toEqual(burst.map(() => true));
      expect(await Promise.all(watched.map((s) => s.closed))).toEqual(watched.map(() => ({ code: 4001, reason: 'evicted' })));
      for (const k of burst) {
        const socket = await TestClient.connect(spread(nodes(), k + 1), logins[k]!.accessToken);
        open.push(socket);
        sockets[k] = socket;
        byUse.push(k);
      }

      // Exactly the cap live, the most recently used, as every node sees it.
      const live = [...byUse].sort((a, b) => a - b);
      for (let i = 0; i < 3; i++) {
        const onNode = live.find((k) => (k + 1) % 3 === i)!; // session k's socket is on node k + 1
        const own = await expectOk(sockets[onNode]!.ask('SessionStore', 'GetOwn'));
        expect(own.items.map((s: { sid: string }) => s.sid).sort()).toEqual(live.map((k) => logins[k]!.sid).sort());
      }
    }

    const live = new Set(byUse);
    const gone = logins.map((_, k) => k).filter((k) => !live.has(k));
    expect(gone).toHaveLength(ROUNDS * BURST);
    for (const k of gone) await expectError(post(spread(nodes(), k), '/auth/refresh', { refreshToken: logins[k]!.refreshToken }), 'SESSION_REVOKED', { status: 401 });
    const replies = await Promise.all([...live].map((k) => sockets[k]!.ask('UserStore', 'GetOwn')));
    expect(replies.map((r) => r.ok)).toEqual(replies.map(() => true));
  }, 180_000);

  it(`a ticket opens one socket across the nodes: ${UPGRADES} concurrent upgrades with it, one 101 (${TICKET_ROUNDS} rounds)`, async () => {
    const session = await login(nodes().url(1), { ...user, deviceId: 'device-tickets' });
    for (let round = 0; round < TICKET_ROUNDS; round++) {
      const issued = await post(nodes().url(round % 3), '/auth/ticket', undefined, { headers: { Authorization: `Bearer ${session.accessToken}` } });
      expect(issued.status).toBe(200);
      const answers = await Promise.all(
        Array.from({ length: UPGRADES }, (_, k) => rawUpgrade(spread(nodes(), k + round), undefined, { query: `?ticket=${encodeURIComponent(issued.body.ticket)}` })),
      );
      for (const a of answers) a.socket?.destroy();
      expect(answers.filter((a) => a.status === 101)).toHaveLength(1);
      const refused = answers.filter((a) => a.status !== 101);
      expect(refused.map((a) => [a.status, a.body?.error?.code])).toEqual(refused.map(() => [401, 'INVALID_TOKEN']));
    }
  }, 120_000);
});
