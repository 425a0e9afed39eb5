/**
 * The login limiter across three nodes (SPEC §8, §9 Login limiter): its counts live in Redis, so failures spread over
 * the nodes trip it on the same attempt as failures sent to one node — sequential or in parallel (an attempt counts
 * before its password is checked, on whichever node) — and a username locked by failures from many addresses still
 * lets in a device it logged in from before, on any node.
 *
 * The nodes trust loopback as a proxy, so each scenario is its own client address (X-Forwarded-For), as it is behind
 * a real proxy. Password hashing is real.
 */
import { beforeAll, afterAll, expect, it } from '@jest/globals';
import { loginWithPassword, type HttpAnswer, TestClient } from '@greenroom/server/testing';
import { adminSocket, createUser, describeNodes, nodesFor, spread, type User } from './cluster.js';

/** GREENROOM_LOGIN_MAX_FAILURES, its default. */
const MAX_FAILURES = 10;
const BURST = 3 * MAX_FAILURES;
const BURST_ROUNDS = 3;

describeNodes('the login limiter on three nodes', () => {
  const nodes = nodesFor(3, { GREENROOM_TRUST_PROXY: 'loopback' });
  let admin: TestClient;

  beforeAll(async () => {
    admin = await adminSocket(nodes().url(0));
  });
  afterAll(async () => {
    await admin.close();
  });

  /** A login from client `address` (behind the trusted proxy) to `node`. */
  const loginFrom = (node: string, user: { username: string; password: string }, address: string, deviceId?: string) =>
    loginWithPassword(node, { ...user, ...(deviceId ? { deviceId } : {}) }, { headers: { 'X-Forwarded-For': address } });

  const wrong = (user: User, i: number) => ({ username: user.username, password: `wrong ${i}` });

  const expectRateLimited = (a: HttpAnswer) => {
    expect(a.status).toBe(429);
    expect(a.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.any(String) } });
    expect(a.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  };

  it(`failures from one address trip it on the same attempt whether they reach one node or all three: the ${MAX_FAILURES + 1}th, and the correct password then too`, async () => {
    const statuses = async (user: User, address: string, node: (k: number) => string) => {
      const out: number[] = [];
      for (let k = 0; k < MAX_FAILURES + 2; k++) out.push((await loginFrom(node(k), wrong(user, k), address)).status);
      return out;
    };
    const oneNode = await statuses(await createUser(admin), '203.0.113.1', () => nodes().url(0));
    const spreadOut = await createUser(admin);
    const threeNodes = await statuses(spreadOut, '203.0.113.2', (k) => spread(nodes(), k));
    expect(oneNode).toEqual([...Array<number>(MAX_FAILURES).fill(401), 429, 429]);
    expect(threeNodes).toEqual(oneNode);
    for (let i = 0; i < 3; i++) expectRateLimited(await loginFrom(nodes().url(i), spreadOut, '203.0.113.2'));
  }, 120_000);

  it(`a burst of ${BURST} parallel guesses from one address, spread over the nodes, gets exactly ${MAX_FAILURES} password checks (${BURST_ROUNDS} rounds)`, async () => {
    for (let round = 0; round < BURST_ROUNDS; round++) {
      const user = await createUser(admin);
      const address = `203.0.113.${10 + round}`;
      const answers = await Promise.all(Array.from({ length: BURST }, (_, k) => loginFrom(spread(nodes(), k), wrong(user, k), address)));
      const invalid = answers.filter((a) => a.status === 401);
      expect(invalid).toHaveLength(MAX_FAILURES);
      expect(invalid.map((a) => a.body.error.code)).toEqual(invalid.map(() => 'INVALID_CREDENTIALS'));
      const limited = answers.filter((a) => a.status !== 401);
      expect(limited).toHaveLength(BURST - MAX_FAILURES);
      limited.forEach(expectRateLimited);
    }
  }, 120_000);

  it('a username locked by failures from many addresses over the nodes refuses new devices on every node, and lets in a device it used before on any', async () => {
    const user = await createUser(admin);
    const first = await loginFrom(nodes().url(0), user, '203.0.113.50');
    expect(first.status).toBe(200);
    const device = first.body.deviceId as string;
    expect(device).toEqual(expect.any(String));

    // Two guesses from each of five addresses, each on another node: no address reaches its limit, the username does.
    for (let k = 0; k < MAX_FAILURES; k++) {
      expect((await loginFrom(spread(nodes(), k), wrong(user, k), `198.51.100.${Math.floor(k / 2)}`)).status).toBe(401);
    }
    for (let i = 0; i < 3; i++) expectRateLimited(await loginFrom(nodes().url(i), user, `198.51.100.${100 + i}`));
    for (let i = 0; i < 3; i++) {
      const known = await loginFrom(nodes().url(i), user, '203.0.113.50', device);
      expect(known.status).toBe(200);
      expect(known.body).toMatchObject({ uid: user.uid, deviceId: device });
    }
  }, 120_000);
});
