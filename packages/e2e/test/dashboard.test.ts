/**
 * The dashboard in a real browser (Debian's chromium via playwright-core), served by the server at `/` from the
 * real build of packages/dashboard. An admin signs in; a second user connecting from Node appears without a reload;
 * blocking them from the page closes their socket with 4003 and shows them blocked; unblock; revoke one session and
 * all of a user's; fingerprints newest first, blocked and unblocked by device; create a user, change a role; a
 * non-admin sees and revokes only their own sessions. Full-page screenshots of every view at 1280 and 390 px wide
 * go to <repo>/.artifacts/dashboard/ (git-ignored). No console error or warning, no page error, from start to end.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import WebSocket from 'ws';
import { GreenroomClient, type SocketLike } from '@greenroom/client';
import { internals, issueSession, startTestServer, TestClient, type Closed, type TestServer } from '@greenroom/server/testing';
import { browserUnavailable, launchProfile } from '../src/browser.js';
import { FingerprintStore, UserStore } from '@greenroom/server';

const unavailable = browserUnavailable();
// Skipped only where chromium cannot be installed (not root / no apt); the reason is printed by the test command.
const describeBrowser = unavailable ? describe.skip : describe;

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(REPO, '.artifacts', 'dashboard');
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };

const ADMIN = { username: 'ada', password: 'ada-admin-password-1' };
const USER = { username: 'robin', password: 'robin-password-1' };

/** What the page shows for a fingerprint (dom.ts shortFingerprint). */
const short = (fp: string) => (fp.length > 15 ? `${fp.slice(0, 13)}…` : fp);

interface Profile {
  context: BrowserContext;
  close(): Promise<void>;
}

describeBrowser('the dashboard in a browser', () => {
  let server: TestServer;
  let admin: Profile;
  let page: Page;
  /** Console errors and warnings, and page errors, of every page. */
  const problems: string[] = [];
  /** The one failed request the tests cause on purpose (a wrong password), with its console line. */
  const expectedFailures: string[] = [];

  const watch = (p: Page) => {
    p.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()} @ ${m.location().url}`);
    });
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p.setDefaultTimeout(20_000);
    return p;
  };

  const shot = async (p: Page, view: string) => {
    const width = p.viewportSize()!.width;
    await p.screenshot({ path: join(ARTIFACTS, `${view}-${width}.png`), fullPage: true });
  };

  const tab = (p: Page, name: string) => p.getByRole('tab', { name, exact: true });
  const openTab = async (p: Page, name: string) => {
    await tab(p, name).click();
    await p.locator(`[role="tabpanel"]:not([hidden]) h2`, { hasText: name }).waitFor();
  };
  /** The row of a table whose name cell (`.name`) is exactly `name`. */
  const rowOf = (p: Page, table: string, name: string) => p.locator(`#${table} tbody tr`).filter({ has: p.locator('.name', { hasText: new RegExp(`^${name}$`) }) });
  const sessionRow = (p: Page, sid: string) => p.locator(`#sessions-table tr[data-key="${sid}"]`);
  const confirmIn = async (p: Page, button: string) => {
    const dialog = p.locator('dialog.confirm[open]');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: button, exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
  };
  const noHorizontalScroll = (p: Page) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  /** Every form control has an accessible name; every button has a name. */
  const unlabelled = (p: Page) =>
    p.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('input, select, textarea, button')]
        .filter((el) => el.getClientRects().length > 0)
        .filter((el) => {
          if (el.getAttribute('aria-label')?.trim()) return false;
          if (el instanceof HTMLButtonElement) return !el.textContent?.trim();
          return ((el as HTMLInputElement).labels?.length ?? 0) === 0;
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );

  /** A Node client (GreenroomClient over ws) that records how its sockets closed. */
  const nodeClient = async (tokens: Awaited<ReturnType<typeof issueSession>>) => {
    const closes: Closed[] = [];
    const client = new GreenroomClient({
      url: server.url,
      auth: { mode: 'tokens', tokens },
      backoff: { baseMs: 50, capMs: 200 },
      socket: (url, headers) => {
        const ws = new WebSocket(url, { headers });
        ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
        return ws as unknown as SocketLike;
      },
    });
    const ended = new Promise<string>((resolve) => {
      client.on('blocked', () => resolve('blocked'));
      client.on('signedOut', () => resolve('signedOut'));
    });
    const open = new Promise<void>((resolve) => client.on('open', () => resolve()));
    await client.connect();
    await open;
    return { client, closes, ended };
  };

  beforeAll(async () => {
    // The real dashboard, built as `npm start` and `npm test` build it, so `jest` alone works too.
    const built = spawnSync(process.execPath, [join(REPO, 'packages', 'dashboard', 'build.mjs')], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`dashboard build failed: ${built.stderr}`);
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startTestServer({ config: { loginMaxFailures: 1000 } });
    await server.ask(UserStore.Create, { ...ADMIN, role: 'admin' });
    admin = await launchProfile();
    page = watch(await admin.context.newPage());
    await page.setViewportSize(WIDE);
  });

  afterAll(async () => {
    await admin?.close();
    await server?.close();
  });

  it('shows a login page, and a clear error for a wrong password', async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel('Username').waitFor();
    expect(await page.title()).toBe('Sign in · Greenroom');
    await shot(page, 'login');

    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toBe('Wrong username or password.');
    // Chromium logs the 401 answer itself: the one console line this suite causes on purpose.
    expectedFailures.push('/auth/login');
    expect(await page.getByLabel('Password').inputValue()).toBe('');
  });

  it('signs the admin in and lists their own session, with health and counts in the header', async () => {
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await tab(page, 'Sessions').waitFor();
    expect(await tab(page, 'Sessions').getAttribute('aria-selected')).toBe('true');
    const mine = rowOf(page, 'sessions-table', ADMIN.username);
    await mine.getByText('This session').waitFor();
    await page.locator('.conn', { hasText: 'Live' }).waitFor();
    await page.locator('.health', { hasText: 'Healthy' }).waitFor();
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('metric-connections')?.textContent ?? ''));
    expect(Number(await page.locator('#metric-sessions').textContent())).toBeGreaterThanOrEqual(1);
    expect(await page.locator('.me').textContent()).toBe(ADMIN.username);
  });

  let samUid = '';

  it('shows a second user connecting from Node without a reload; blocking them closes their socket 4003 and shows them blocked; unblock', async () => {
    const sam = await issueSession(server, { username: 'sam' });
    samUid = sam.uid;
    const node = await nodeClient(sam);
    const row = sessionRow(page, sam.sid);
    await row.locator('.name', { hasText: 'sam' }).waitFor();
    await row.locator('.count', { hasText: /^1$/ }).waitFor();
    await row.locator('code', { hasText: short(sam.fingerprint) }).waitFor();

    await openTab(page, 'Users');
    const samRow = rowOf(page, 'users-table', 'sam');
    expect(await samRow.locator('.badge', { hasText: 'Active' }).count()).toBe(1);
    await samRow.getByRole('button', { name: 'Block sam', exact: true }).click();
    await shot(page, 'confirm');
    // Cancel first: nothing happens.
    await page.locator('dialog.confirm[open]').getByRole('button', { name: 'Cancel' }).click();
    expect(node.client.state).toBe('open');
    await samRow.getByRole('button', { name: 'Block sam', exact: true }).click();
    await confirmIn(page, 'Block sam');

    await expect(node.ended).resolves.toBe('blocked');
    expect(node.closes).toEqual([{ code: 4003, reason: 'blocked' }]);
    await samRow.locator('.badge', { hasText: 'Blocked' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Blocked sam' }).waitFor();
    expect((await server.ask(UserStore.Get, { uid: sam.uid })).blocked).toBe(true);
    await openTab(page, 'Sessions');
    await row.waitFor({ state: 'detached' });

    await openTab(page, 'Users');
    await samRow.getByRole('button', { name: 'Unblock sam', exact: true }).click();
    await samRow.locator('.badge', { hasText: 'Active' }).waitFor();
    expect((await server.ask(UserStore.Get, { uid: sam.uid })).blocked).toBe(false);
    node.client.close();
  });

  it('revokes one session: its Node socket closes 4001 revoked and the row goes', async () => {
    const again = await issueSession(server, { uid: samUid });
    const socket = await TestClient.connect(server, again.accessToken);
    await openTab(page, 'Sessions');
    const row = sessionRow(page, again.sid);
    await row.locator('.count', { hasText: /^1$/ }).waitFor();
    await row.getByRole('button', { name: `Revoke sam's session on device ${short(again.fingerprint)}` }).click();
    await expect(socket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
    await row.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Revoked a session of sam' }).waitFor();
  });

  it('lists fingerprints most recent first, and blocks and unblocks a user by device', async () => {
    const device = await issueSession(server, { uid: samUid });
    const socket = await TestClient.connect(server, device.accessToken);
    await openTab(page, 'Fingerprints');
    // A row is one (device, user): keyed by both.
    const key = `${device.fingerprint}/${samUid}`;
    const fpRow = page.locator(`#fingerprints-table tr[data-key="${key}"]`);
    await fpRow.waitFor();
    // Newest first: the page's order is the server's GetMostRecent order, and this device (seen last) leads.
    const shown = await page.locator('#fingerprints-table tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key));
    const recent = await server.ask(FingerprintStore.GetMostRecent, { limit: 500 });
    expect(shown).toEqual(recent.items.map((f) => `${f.fingerprint}/${f.uid}`));
    expect(shown[0]).toBe(key);
    expect(await fpRow.locator('.name').textContent()).toBe('sam');

    await fpRow.getByRole('button', { name: `Block device ${short(device.fingerprint)} of sam` }).click();
    await confirmIn(page, 'Block device and owner');
    await expect(socket.closed).resolves.toEqual({ code: 4003, reason: 'blocked' });
    await fpRow.locator('.badge', { hasText: 'Blocked' }).waitFor();
    await openTab(page, 'Users');
    await rowOf(page, 'users-table', 'sam').locator('.badge', { hasText: 'Blocked' }).waitFor();

    await openTab(page, 'Fingerprints');
    await fpRow.getByRole('button', { name: `Unblock device ${short(device.fingerprint)} of sam` }).click();
    await fpRow.locator('.badge', { hasText: 'Allowed' }).waitFor();
    await openTab(page, 'Users');
    await rowOf(page, 'users-table', 'sam').locator('.badge', { hasText: 'Active' }).waitFor();
  });

  it('revokes all sessions of a user, only after a confirm', async () => {
    const one = await issueSession(server, { uid: samUid });
    const two = await issueSession(server, { uid: samUid });
    const [a, b] = [await TestClient.connect(server, one.accessToken), await TestClient.connect(server, two.accessToken)];
    await openTab(page, 'Sessions');
    await sessionRow(page, one.sid).locator('.count', { hasText: /^1$/ }).waitFor();
    await sessionRow(page, two.sid).locator('.count', { hasText: /^1$/ }).waitFor();

    const revokeAll = sessionRow(page, one.sid).getByRole('button', { name: 'Revoke all sessions of sam' });
    await revokeAll.click();
    await page.locator('dialog.confirm[open]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('dialog.confirm').waitFor({ state: 'detached' });
    // Focus went back to the button that opened the dialog.
    expect(await revokeAll.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await sessionRow(page, two.sid).count()).toBe(1);

    await revokeAll.click();
    await confirmIn(page, 'Revoke all');
    await expect(a.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
    await expect(b.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
    await sessionRow(page, one.sid).waitFor({ state: 'detached' });
    await sessionRow(page, two.sid).waitFor({ state: 'detached' });
    expect(await page.locator('#sessions-table .name', { hasText: /^sam$/ }).count()).toBe(0);
  });

  it('creates a user and changes their role', async () => {
    await openTab(page, 'Users');
    // A taken username is refused with a clear message, in the form; editing the form clears it.
    const formError = page.locator('.create-user [role="alert"]');
    await page.getByLabel('Username').fill('sam');
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Create user' }).click();
    await formError.filter({ hasText: 'That username is taken.' }).waitFor();

    await page.getByLabel('Username').fill(USER.username);
    await formError.waitFor({ state: 'hidden' });
    await page.getByLabel('Role', { exact: true }).selectOption('user');
    await page.getByRole('button', { name: 'Create user' }).click();
    const row = rowOf(page, 'users-table', USER.username);
    await row.waitFor();
    await row.getByText('Never').waitFor();
    expect(await page.getByLabel('Username').inputValue()).toBe('');
    expect(await page.getByLabel('Password').inputValue()).toBe('');

    const role = row.getByLabel(`Role of ${USER.username}`, { exact: true });
    await role.selectOption('admin');
    await row.getByRole('button', { name: `Save the role of ${USER.username}` }).click();
    await page.getByRole('status').filter({ hasText: `${USER.username} is now admin.` }).waitFor();
    const get = () => server.ask(UserStore.Get, { username: USER.username });
    expect((await get()).role).toBe('admin');
    await role.selectOption('user');
    await row.getByRole('button', { name: `Save the role of ${USER.username}` }).click();
    await page.getByRole('status').filter({ hasText: `${USER.username} is now user.` }).waitFor();
    expect((await get()).role).toBe('user');
    await row.getByRole('button', { name: `Save the role of ${USER.username}` }).waitFor({ state: 'hidden' });
  });

  it('is keyboard reachable, with every control labelled', async () => {
    await tab(page, 'Sessions').click();
    await tab(page, 'Sessions').focus();
    await page.keyboard.press('ArrowRight');
    expect(await tab(page, 'Users').getAttribute('aria-selected')).toBe('true');
    expect(await tab(page, 'Users').evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('new-username');
    await tab(page, 'Users').focus();
    await page.keyboard.press('End');
    expect(await tab(page, 'Fingerprints').getAttribute('aria-selected')).toBe('true');
    for (const view of ['Sessions', 'Users', 'Fingerprints']) {
      await openTab(page, view);
      expect(await unlabelled(page)).toEqual([]);
    }
  });

  it('at 1280 and 390 px wide: every view fits without sideways scrolling; screenshots', async () => {
    // Something to show: sam on two devices, connected; mallory blocked by device.
    const sockets = await Promise.all(
      [await issueSession(server, { uid: samUid }), await issueSession(server, { uid: samUid })].map((t) => TestClient.connect(server, t.accessToken)),
    );
    const mallory = await issueSession(server, { username: 'mallory' });
    await server.ask(FingerprintStore.Block, { fingerprint: mallory.fingerprint });
    await openTab(page, 'Users');
    await rowOf(page, 'users-table', 'mallory').locator('.badge', { hasText: 'Blocked' }).waitFor();
    // The header's counts are in, and the last outcome message has faded.
    await page.waitForFunction(() => document.getElementById('metric-sessions')?.textContent === '3');
    await page.locator('.notice-ok').waitFor({ state: 'hidden' });
    for (const size of [WIDE, NARROW]) {
      await page.setViewportSize(size);
      for (const [view, name] of [['sessions', 'Sessions'], ['users', 'Users'], ['fingerprints', 'Fingerprints']] as const) {
        await openTab(page, name);
        expect(await noHorizontalScroll(page)).toBe(true);
        await shot(page, view);
      }
    }
    // At 390 the tables are stacked cards: the column headers are not laid out, each cell names its column.
    expect(await page.locator('#fingerprints-table thead').evaluate((el) => getComputedStyle(el).position)).toBe('absolute');
    await page.setViewportSize(WIDE);
    await Promise.all(sockets.map((c) => c.close()));
  });

  it('keeps the admin signed in, on the same view, across a reload', async () => {
    await openTab(page, 'Users');
    await page.reload();
    await tab(page, 'Users').waitFor();
    expect(await tab(page, 'Users').getAttribute('aria-selected')).toBe('true');
    await openTab(page, 'Sessions');
    await rowOf(page, 'sessions-table', ADMIN.username).getByText('This session').waitFor();
    await page.locator('.conn', { hasText: 'Live' }).waitFor();
  });

  it('shows a non-admin only their own sessions, which they can revoke', async () => {
    const robin = await server.ask(UserStore.Get, { username: USER.username });
    const other = await launchProfile();
    try {
      const p = watch(await other.context.newPage());
      await p.setViewportSize(NARROW);
      await p.goto(`${server.url}/`);
      await p.getByLabel('Username').waitFor();
      await shot(p, 'login');
      await p.getByLabel('Username').fill(USER.username);
      await p.getByLabel('Password').fill(USER.password);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('heading', { name: 'Your sessions' }).waitFor();
      await p.locator('#sessions-table .badge', { hasText: 'This session' }).waitFor();

      // Only their own view; no admin counts; only their own sessions (the admin's and sam's are elsewhere).
      expect(await p.getByRole('tab').allTextContents()).toEqual(['Your sessions']);
      expect(await p.locator('.metrics').count()).toBe(0);
      await p.locator('.health', { hasText: 'Healthy' }).waitFor();

      // Another device of theirs connects from Node: it shows up (polled: non-admins get no session pushes).
      const device = await issueSession(server, { uid: robin.uid });
      const socket = await TestClient.connect(server, device.accessToken);
      const row = sessionRow(p, device.sid);
      await row.locator('.count', { hasText: /^1$/ }).waitFor();
      const sids = await p.locator('#sessions-table tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key));
      const own = await internals(server).store.findBy<{ sid: string; revokedAt: number | null }>('sessions', 'uid', robin.uid);
      const live = own.filter((r) => r.value.revokedAt === null).map((r) => r.value.sid);
      expect([...sids].sort()).toEqual([...live].sort());
      expect(sids).toHaveLength(2);
      expect(await unlabelled(p)).toEqual([]);
      expect(await noHorizontalScroll(p)).toBe(true);
      await shot(p, 'user-sessions');
      await p.setViewportSize(WIDE);
      await shot(p, 'user-sessions');

      await row.getByRole('button', { name: `Revoke the session on device ${short(device.fingerprint)}` }).click();
      await expect(socket.closed).resolves.toEqual({ code: 4001, reason: 'revoked' });
      await row.waitFor({ state: 'detached' });
      expect(await p.locator('#sessions-table tbody tr').count()).toBe(1);

      // Signing out ends the session and shows the login page; a reload stays there without asking the server.
      await p.getByRole('button', { name: 'Sign out' }).click();
      await p.getByLabel('Username').waitFor();
      await p.getByText('You are signed out.').waitFor();
      await p.reload();
      await p.getByLabel('Username').waitFor();
      await p.close();
    } finally {
      await other.close();
    }
  });

  it('left no console error or warning and no page error, but the wrong password on purpose', async () => {
    const unexpected = problems.filter((line) => !(expectedFailures.some((path) => line.endsWith(`${server.url}${path}`)) && / 401 /.test(line)));
    expect(unexpected).toEqual([]);
    expect(problems.length - unexpected.length).toBe(expectedFailures.length);
  });
});
