/**
 * The client in a real browser (Debian's chromium via playwright-core): a page served by Greenroom logs in with
 * cookies, asks, survives a server restart, and leaves no WebSocket warning or error in the console; two tabs of
 * one profile needing a refresh at once send one /auth/refresh.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { internals, startTestServer, type TestServer } from '@greenroom/server/testing';
import { browserUnavailable, launchProfile } from '../src/browser.js';
import { pagesWithClient } from '../src/bundle.js';
import { UserStore } from '@greenroom/server';

const unavailable = browserUnavailable();
// Skipped only where chromium cannot be installed (not root / no apt); the reason is printed by the test command.
const describeBrowser = unavailable ? describe.skip : describe;

describeBrowser('the client in a browser', () => {
  let pagesDir: string;
  let dataDir: string;
  let server: TestServer;
  let profile: Awaited<ReturnType<typeof launchProfile>>;
  let context: BrowserContext;
  const consoleLines: string[] = [];
  const password = 'browser-password-1';

  const start = async (port = 0, secret?: string) =>
    startTestServer({ keepDataDir: dataDir, staticDir: pagesDir, config: { port, ...(secret ? { secret } : {}), loginMaxFailures: 1000 } });

  const openPage = async (): Promise<Page> => {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}/client.html`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'ready');
    return page;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'greenroom-browser-'));
    pagesDir = await pagesWithClient('client');
    server = await start();
    await server.ask(UserStore.Create, { username: 'pat', password, role: 'user' });
    profile = await launchProfile();
    context = profile.context;
  });

  afterAll(async () => {
    await profile?.close();
    await server?.stop();
    await rm(pagesDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('logs in, asks, survives a server restart, and the console holds no WebSocket warning or error', async () => {
    const page = await openPage();
    const session = await page.evaluate((p) => window.gr.login('pat', p), password);
    await page.evaluate((at) => window.gr.start(at), session.accessExpiresAt);
    const own = await page.evaluate(() => window.gr.ask('UserStore', 'GetOwn', {}));
    expect(own).toMatchObject({ uid: session.uid, username: 'pat' });

    const { port, config } = server;
    await server.stop();
    await page.waitForFunction(() => window.gr.state() === 'reconnecting');
    server = await start(port, config.secret);
    await page.evaluate(() => window.gr.waitOpen());
    const again = await page.evaluate(() => window.gr.ask('SessionStore', 'GetOwn', {}));
    expect((again as { items: Array<{ current: boolean }> }).items.some((s) => s.current)).toBe(true);
    expect(await page.evaluate(() => window.gr.states())).toEqual(['open', 'reconnecting', 'open']);
    expect(consoleLines.filter((l) => /websocket/i.test(l))).toEqual([]);
    await page.close();
  });

  it('sends one /auth/refresh when two tabs of one profile need a refresh at once', async () => {
    const [a, b] = [await openPage(), await openPage()];
    const session = await a.evaluate((p) => window.gr.login('pat', p), password);
    await a.evaluate((at) => window.gr.start(at), session.accessExpiresAt);
    await b.evaluate((at) => window.gr.start(at), session.accessExpiresAt);
    const before = internals(server).refresh.requests;
    await Promise.all([a.evaluate(() => window.gr.refresh()), b.evaluate(() => window.gr.refresh())]);
    expect(internals(server).refresh.requests - before).toBe(1);
    const sent = (await a.evaluate(() => window.gr.refreshRequests())) + (await b.evaluate(() => window.gr.refreshRequests()));
    expect(sent).toBe(1);
    // Both tabs still work on the refreshed cookies.
    expect(await b.evaluate(() => window.gr.ask('UserStore', 'GetOwn', {}))).toMatchObject({ uid: session.uid });
    expect(consoleLines.filter((l) => /websocket/i.test(l))).toEqual([]);
  });
});

declare global {
  interface Window {
    gr: {
      login(username: string, password: string): Promise<{ uid: string; accessExpiresAt: number }>;
      start(accessExpiresAt: number): Promise<void>;
      ask(actor: string, type: string, payload: unknown): Promise<unknown>;
      refresh(): Promise<void>;
      state(): string;
      states(): string[];
      refreshRequests(): number;
      waitOpen(): Promise<void>;
    };
  }
}
