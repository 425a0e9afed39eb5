/**
 * Two nodes behind a real nginx, configured as docs/operations.md shows (round-robin, no stickiness): a client
 * (@greenroom/client) whose connection keeps dropping reconnects through nginx, lands on either node, and keeps
 * working — its asks answered and its refreshes accepted whichever node serves them.
 *
 * The client's own network is a TcpProxy in front of nginx, cut and restored at once to drop its socket.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createClient, login as clientLogin, type GreenroomClient } from '@greenroom/client';
import { eventually, TestClient } from '@greenroom/server/testing';
import { adminSocket, createUser, describeIf, describeNodes, nodesFor, type User } from './cluster.js';
import { nginxUnavailable, startNginx, type Nginx } from './nginx.js';
import { TcpProxy } from './tcp-proxy.js';

const RECONNECTS = 10;

describeNodes('two nodes behind nginx', () => {
  describeIf(nginxUnavailable())('round-robin', () => {
    const nodes = nodesFor(2, { GREENROOM_TRUST_PROXY: 'loopback' });
    let nginx: Nginx;
    let network: TcpProxy;
    let admin: TestClient;
    let user: User;
    let client: GreenroomClient | undefined;

    beforeAll(async () => {
      nginx = await startNginx([nodes().port(0), nodes().port(1)]);
      network = await TcpProxy.start(nginx.port);
      admin = await adminSocket(nodes().url(0));
      user = await createUser(admin);
    });
    afterAll(async () => {
      client?.close();
      await admin?.close();
      await network?.close();
      await nginx?.stop();
    });

    it(`a client's ${RECONNECTS} reconnects land on both nodes, and every one keeps working`, async () => {
      const url = `http://127.0.0.1:${network.port}`;
      const tokens = await clientLogin(url, user);
      client = createClient({ url, auth: { mode: 'tokens', tokens }, backoff: { baseMs: 20, capMs: 200 } });
      let opened = 0;
      client.on('open', () => (opened += 1));
      await client.connect();
      await eventually(() => opened === 1, { timeoutMs: 10_000, what: 'the first socket' });

      for (let k = 1; k <= RECONNECTS; k++) {
        network.cut('refuse');
        network.restore();
        await eventually(() => opened === k + 1 && client!.state === 'open', { timeoutMs: 30_000, what: `reconnect ${k}` });
        expect(await client.ask<{ uid: string }>('UserStore', 'GetOwn')).toMatchObject({ uid: user.uid });
        if (k % 3 === 0) await client.refresh();
      }
      client.close();

      // nginx writes a WebSocket's log entry when it closes: one 101 per socket the client opened.
      const upgrades = await eventually(
        async () => {
          const entries = (await nginx.accessLog()).filter((e) => e.path === '/ws');
          return entries.length === RECONNECTS + 1 && entries;
        },
        { timeoutMs: 10_000, what: 'every socket in the access log' },
      );
      expect(upgrades.map((e) => e.status)).toEqual(upgrades.map(() => 101));
      expect(new Set(upgrades.map((e) => e.upstream))).toEqual(new Set([0, 1].map((i) => `127.0.0.1:${nodes().port(i)}`)));
      const refreshes = (await nginx.accessLog()).filter((e) => e.path === '/auth/refresh');
      expect(refreshes.map((e) => e.status)).toEqual(refreshes.map(() => 200));
    }, 120_000);
  });
});
