/**
 * The Greenroom dashboard: a login page, then a live view of sessions, users and fingerprints over one
 * WebSocket (cookie auth, same origin). Admins get every view, updated by server pushes; everyone else gets their
 * own sessions.
 */
import { GreenroomClient } from '@greenroom/client';
import { forget, resume, signOut } from './auth.js';
import { h, replace } from './dom.js';
import { header } from './header.js';
import { Live } from './live.js';
import { Notices } from './notice.js';
import type { Me } from './types.js';
import type { View, ViewContext } from './view.js';
import { fingerprintsView } from './views/fingerprints.js';
import { loginView } from './views/login.js';
import { sessionsView } from './views/sessions.js';
import { usersView } from './views/users.js';

const root = document.getElementById('app')!;
let teardown: (() => void) | null = null;

function showLogin(message?: string): void {
  teardown?.();
  teardown = null;
  document.title = 'Sign in · Greenroom';
  replace(root, loginView(startApp, message));
}

function startApp(me: Me): void {
  teardown?.();
  const client = new GreenroomClient({ url: location.origin, auth: { mode: 'cookie', accessExpiresAt: me.accessExpiresAt } });
  const live = new Live(client, me);
  const notices = new Notices();
  let ended = false;
  const end = (message: string, logout: boolean) => {
    if (ended) return;
    ended = true;
    client.close();
    if (logout) void signOut().then(() => showLogin(message));
    else {
      forget();
      showLogin(message);
    }
  };
  const ctx: ViewContext = { live, notices, signOut: (message = 'You are signed out.') => end(message, true) };

  const views: View[] = live.admin ? [sessionsView(ctx), usersView(ctx), fingerprintsView(ctx)] : [sessionsView(ctx)];
  const top = header(live, () => ctx.signOut());
  const tabs = views.map((v) => h('button', { type: 'button', role: 'tab', id: `tab-${v.id}`, 'aria-controls': `panel-${v.id}` }, v.label));
  const nav = h('nav', { class: 'tabs', 'aria-label': 'Dashboard views' }, h('div', { role: 'tablist', 'aria-label': 'Views' }, ...tabs));

  const select = (index: number, focus = false) => {
    views.forEach((v, i) => {
      const on = i === index;
      tabs[i]!.setAttribute('aria-selected', String(on));
      tabs[i]!.tabIndex = on ? 0 : -1;
      v.panel.hidden = !on;
    });
    if (focus) tabs[index]!.focus();
    document.title = `${views[index]!.label} · Greenroom`;
    if (history.replaceState) history.replaceState(null, '', `#${views[index]!.id}`);
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(i));
    // Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern); Tab moves into the panel.
    tab.addEventListener('keydown', (ev) => {
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
      if (next === undefined) return;
      ev.preventDefault();
      select((next + tabs.length) % tabs.length, true);
    });
  });

  const lost = h('p', { class: 'banner', role: 'status', hidden: true }, 'Connection lost. Reconnecting…');
  const main = h('main', { class: 'content', id: 'main' }, ...views.map((v) => v.panel));
  replace(root, h('a', { class: 'skip', href: '#main' }, 'Skip to content'), top.element, nav, lost, notices.element, main);
  const initial = Math.max(0, views.findIndex((v) => `#${v.id}` === location.hash));
  select(initial);

  live.on('connection', () => {
    lost.hidden = live.connection !== 'reconnecting';
    if (live.connection === 'signedOut') end('Your session has ended. Sign in again.', false);
    if (live.connection === 'blocked') end('This account has been blocked.', false);
  });
  // Promoted or demoted while the page is open: start over as what the user now is.
  live.on('role', () => {
    if (live.roleChanged()) {
      client.close();
      location.reload();
    }
  });

  teardown = () => {
    live.dispose();
    client.close();
    notices.dispose();
    top.dispose();
    for (const v of views) v.dispose();
    document.querySelector('dialog.confirm')?.remove();
  };
  live.start();
}

async function boot(): Promise<void> {
  let resumed: Awaited<ReturnType<typeof resume>>;
  try {
    resumed = await resume();
  } catch {
    return showLogin('The server cannot be reached. Sign in when it is back.');
  }
  if ('me' in resumed) startApp(resumed.me);
  else showLogin(resumed.ended);
}

void boot();
