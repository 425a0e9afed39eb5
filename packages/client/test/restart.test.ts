/**
 * The server restarts under 200 connected @greenroom/client clients (Node, bearer tokens): it stops (every socket
 * closed 1001 `shutdown`), and a new server starts on the same port, data dir and secret, so the old access tokens
 * stay valid. Every client reconnects — spread over time by full jitter, not in one wave — with at most one live
 * socket at a time and no close() on a CONNECTING socket; asks made while the server was down are answered after
 * the restart; and admin clients' subscriptions keep delivering pushes.
 *
 * Timing: outcomes and order only. "Spread over time" is asserted as many distinct reconnect delays, not as a
 * wall-clock bound.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { eventually, internals, issueSession, startTestServer, type TestServer } from '@greenroom/server/testing';
import { UserStore } from '@greenroom/server';
import { GreenroomClient } from '@greenroom/client';
import { instrumentedFactory, sleep, waitForState, type Instrumented } from './helpers.js';

const CLIENTS = 200;
const ADMINS = 5;

interface Entry {
  client: GreenroomClient;
  inst: Instrumented;
  uid: string;
  admin: boolean;
  pushes: string[];
  reopenedAt?: number;
}

const running: TestServer[] = [];
const entries: Entry[] = [];
let dataDir = '';

afterAll(async () => {
  for (const e of entries) e.client.close();
  for (const s of running) await s.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('server restart under 200 connected clients', () => {
  it('all reconnect, spread over time; each resumes asking; subscriptions keep delivering', async () => {
    const first = await startTestServer();
    running.push(first);
    dataDir = first.dataDir;
    const { port, url } = first;
    const secret = first.config.secret;

    const sessions = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => issueSession(first, { role: i < ADMINS ? 'admin' : 'user' })));
    const target = await issueSession(first); // whose changes the admins watch

    for (const [i, s] of sessions.entries()) {
      const inst = instrumentedFactory();
      const client = new GreenroomClient({
        url,
        auth: { mode: 'tokens', tokens: s },
        socket: inst.factory,
        backoff: { baseMs: 100, capMs: 1_000 },
        askTimeoutMs: 60_000,
      });
      const entry: Entry = { client, inst, uid: s.uid, admin: i < ADMINS, pushes: [] };
      client.on('UserChanged', (p: any) => p.user.uid === target.uid && entry.pushes.push(p.user.displayName));
      entries.push(entry);
    }
    await Promise.all(entries.map((e) => e.client.connect()));
    await Promise.all(entries.map((e) => waitForState(e.client, 'open')));
    expect(internals(first).connections.size).toBe(CLIENTS);

    // Everyone asks; admins subscribe and see a push.
    const own = await Promise.all(entries.map((e) => e.client.ask<{ uid: string }>('UserStore', 'GetOwn')));
    expect(own.map((o) => o.uid)).toEqual(entries.map((e) => e.uid));
    const admins = entries.filter((e) => e.admin);
    await Promise.all(admins.map((e) => e.client.subscribe('UserStore')));
    await first.ask(UserStore.Update, { uid: target.uid, displayName: 'before' });
    await eventually(() => admins.every((e) => e.pushes.includes('before')), { intervalMs: 10, timeoutMs: 10_000 });

    // ---- restart ----
    for (const e of entries) e.client.on('open', () => (e.reopenedAt ??= performance.now()));
    await first.stop();
    running.splice(running.indexOf(first), 1);
    // Every client saw its socket closed 1001 shutdown, and none is open now.
    for (const e of entries) {
      expect(e.inst.sockets[0]!.closeCode).toBe(1001);
      expect(e.inst.sockets[0]!.closeReason).toBe('shutdown');
      expect(e.client.state).toBe('reconnecting');
      expect(e.reopenedAt).toBeUndefined();
    }
    // Asks made while the server is down wait for the connection.
    const whileDown = entries.map((e) => e.client.ask<{ uid: string }>('UserStore', 'GetOwn'));

    const second = await startTestServer({ keepDataDir: dataDir, config: { port, secret } });
    running.push(second);
    expect(second.url).toBe(url);

    await Promise.all(entries.map((e) => waitForState(e.client, 'open')));
    const answered = await Promise.all(whileDown);
    expect(answered.map((o) => o.uid)).toEqual(entries.map((e) => e.uid));
    // Each resumes asking on the new server.
    const again = await Promise.all(entries.map((e) => e.client.ask<{ uid: string }>('UserStore', 'GetOwn')));
    expect(again.map((o) => o.uid)).toEqual(entries.map((e) => e.uid));
    expect(internals(second).connections.size).toBe(CLIENTS);

    // Subscriptions were re-established (each admin's GetOwn above came after its re-sent Subscribe).
    await second.ask(UserStore.Update, { uid: target.uid, displayName: 'after' });
    await eventually(() => admins.every((e) => e.pushes.includes('after')), { intervalMs: 10, timeoutMs: 10_000 });
    for (const e of admins) expect(e.pushes).toEqual(['before', 'after']);

    // One live socket per client at any time; never a close() on a CONNECTING socket.
    for (const e of entries) {
      expect(e.inst.maxOpenAtOnce).toBe(1);
      expect(e.inst.closesWhileConnecting()).toEqual([]);
      expect(e.inst.sockets.filter((s) => s.openedAt !== undefined && s.ws.readyState === 1)).toHaveLength(1);
    }

    // Spread over time (full jitter). Had every client waited the same delay, the first retries would come in
    // exactly the order of the 1001 closes (timers of one duration fire first-in, first-out); with full jitter the
    // order is shuffled: a large share of client pairs retry in the opposite order to the one they were closed in.
    const byClose = [...entries].sort((x, y) => x.inst.sockets[0]!.closedAt! - y.inst.sockets[0]!.closedAt!);
    const retryAt = byClose.map((e) => e.inst.sockets[1]!.createdAt);
    let inversions = 0;
    for (let i = 0; i < retryAt.length; i++) for (let j = i + 1; j < retryAt.length; j++) if (retryAt[i]! > retryAt[j]!) inversions++;
    const pairs = (CLIENTS * (CLIENTS - 1)) / 2;
    expect(inversions / pairs).toBeGreaterThan(0.25);
    // And the reconnects did not all land at one moment.
    const reopened = entries.map((e) => Math.round(e.reopenedAt!));
    expect(new Set(reopened).size).toBeGreaterThanOrEqual(20);
    expect(Math.max(...reopened)).toBeGreaterThan(Math.min(...reopened));
  }, 120_000);
});
