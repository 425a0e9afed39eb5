/**
 * The client on a page of another origin, in a real browser (Debian's chromium via playwright-core): the page is
 * served by a small static server on another 127.0.0.1 port, listed in GREENROOM_ALLOWED_ORIGINS, and calls the
 * Greenroom server with CORS. It logs in, connects with tokens (tickets) and with cookies, and reconnects after a
 * server restart; a page of an origin not allowed gets no CORS grant; two tabs left idle past the headers timeout
 * then refreshing together make one refresh (and no stale answer breaks it).
 *
 * Cookie mode across origins: the cookies are SameSite=Strict, so only origins of one site can share them.
 * http://127.0.0.1:A and http://127.0.0.1:B are two origins of one site (cookies do not look at ports), which is the
 * case cookie mode is for; a page of another site uses tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { internals, startTestServer, type TestServer } from '@greenroom/server/testing';
import { browserUnavailable, launchProfile } from '../src/browser.js';
import { pagesWithClient } from '../src/bundle.js';
import { UserStore } from '@greenroom/server';

const unavailable = browserUnavailable();
const describeBrowser = unavailable ? describe.skip : describe;

const HEADERS_TIMEOUT_MS = 1000;

/** A static server for the pages (another origin than Greenroom's). */
async function pageServer(dir: string): Promise<{ origin: string; close(): Promise<void> }> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const server: Server = createServer(async (req, res) => {
    const name = (req.url ?? '/').split('?', 1)[0]!.replace(/^\/+/, '');
    if (!/^[\w.-]+$/.test(name)) return void res.writeHead(404).end();
    try {
      const body = await readFile(join(dir, name));
      res.writeHead(200, { 'Content-Type': types[extname(name)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describeBrowser('a page of another origin', () => {
  let pagesDir: string;
  let dataDir: string;
  let server: TestServer;
  let allowedPages: Awaited<ReturnType<typeof pageServer>>;
  let foreignPages: Awaited<ReturnType<typeof pageServer>>;
  let profile: Awaited<ReturnType<typeof launchProfile>>;
  let context: BrowserContext;
  const password = 'cross-origin-password-1';

  const start = async (port = 0, secret?: string) =>
    startTestServer({
      keepDataDir: dataDir,
      staticDir: null,
      config: { port, ...(secret ? { secret } : {}), loginMaxFailures: 1000, allowedOrigins: [allowedPages.origin], headersTimeoutMs: HEADERS_TIMEOUT_MS },
    });

  const openPage = async (origin: string): Promise<Page> => {
    const page = await context.newPage();
    await page.goto(`${origin}/cross-origin.html?api=${encodeURIComponent(server.url)}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'ready');
    return page;
  };

  const restart = async (page: Page) => {
    const { port, config } = server;
    await server.stop();
    await page.waitForFunction(() => window.xo.state() === 'reconnecting');
    server = await start(port, config.secret);
    await page.evaluate(() => window.xo.waitOpen());
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'greenroom-cross-origin-'));
    pagesDir = await pagesWithClient('cross-origin');
    allowedPages = await pageServer(pagesDir);
    foreignPages = await pageServer(pagesDir);
    server = await start();
    await server.ask(UserStore.Create, { username: 'pat', password, role: 'user' });
    profile = await launchProfile();
    context = profile.context;
  });

  afterAll(async () => {
    await profile?.close();
    await server?.stop();
    await allowedPages?.close();
    await foreignPages?.close();
    await rm(pagesDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('logs in, connects with tokens (tickets), asks, and reconnects after a server restart', async () => {
    const page = await openPage(allowedPages.origin);
    const session = await page.evaluate((p) => window.xo.login('pat', p), password);
    await page.evaluate((s) => window.xo.startTokens(s), session);
    expect(await page.evaluate(() => window.xo.ask('UserStore', 'GetOwn', {}))).toMatchObject({ uid: session.uid, username: 'pat' });
    await restart(page);
    expect(await page.evaluate(() => window.xo.ask('UserStore', 'GetOwn', {}))).toMatchObject({ uid: session.uid });
    expect(await page.evaluate(() => window.xo.states())).toEqual(['open', 'reconnecting', 'open']);
    await page.evaluate(() => window.xo.close());
    await page.close();
  });

  it('logs in, connects with cookies (same site, another port), and reconnects after a server restart', async () => {
    const page = await openPage(allowedPages.origin);
    const session = await page.evaluate((p) => window.xo.login('pat', p), password);
    await page.evaluate((at) => window.xo.startCookie(at), session.accessExpiresAt);
    expect(await page.evaluate(() => window.xo.ask('UserStore', 'GetOwn', {}))).toMatchObject({ uid: session.uid });
    await restart(page);
    const again = await page.evaluate(() => window.xo.ask('SessionStore', 'GetOwn', {}));
    expect((again as { items: Array<{ current: boolean }> }).items.some((s) => s.current)).toBe(true);
    expect(await page.evaluate(() => window.xo.states())).toEqual(['open', 'reconnecting', 'open']);
    await page.evaluate(() => window.xo.close());
    await page.close();
  });

  it('a page of an origin not allowed gets no CORS grant: its login fetch fails', async () => {
    const page = await openPage(foreignPages.origin);
    const before = internals(server).refresh.requests;
    expect(await page.evaluate((p) => window.xo.tryLogin('pat', p), password)).toMatch(/^TypeError: /);
    expect(internals(server).refresh.requests).toBe(before);
    await page.close();
  });

  it('two tabs left idle past the headers timeout, then refreshing together, make one refresh', async () => {
    const [a, b] = [await openPage(allowedPages.origin), await openPage(allowedPages.origin)];
    const session = await a.evaluate((p) => window.xo.login('pat', p), password);
    await a.evaluate((at) => window.xo.startCookie(at), session.accessExpiresAt);
    await b.evaluate((at) => window.xo.startCookie(at), session.accessExpiresAt);
    // Idle past the headers timeout: the browser's pre-opened sockets to the server are closed under it.
    await new Promise((r) => setTimeout(r, HEADERS_TIMEOUT_MS * 3));
    const before = internals(server).refresh.requests;
    await Promise.all([a.evaluate(() => window.xo.refresh()), b.evaluate(() => window.xo.refresh())]);
    expect(internals(server).refresh.requests - before).toBe(1);
    expect(await b.evaluate(() => window.xo.ask('UserStore', 'GetOwn', {}))).toMatchObject({ uid: session.uid });
    await a.evaluate(() => window.xo.close());
    await b.evaluate(() => window.xo.close());
  });
});

declare global {
  interface Window {
    xo: {
      login(username: string, password: string): Promise<any>;
      startTokens(tokens: unknown): Promise<void>;
      startCookie(accessExpiresAt: number): Promise<void>;
      tryLogin(username: string, password: string): Promise<string>;
      ask(actor: string, type: string, payload: unknown): Promise<unknown>;
      refresh(): Promise<void>;
      state(): string;
      states(): string[];
      refreshRequests(): number;
      waitOpen(): Promise<void>;
      close(): void;
    };
  }
}
