/**
 * The top bar: server health (GET /healthz, /readyz), this page's connection, the counts from SessionStore.Stats
 * (admins), who is signed in, and Sign out.
 */
import { badge, formatDuration, formatRate, h, setAttr, setText, updateBadge } from './dom.js';
import type { Live } from './live.js';

export function header(live: Live, onSignOut: () => void): { element: HTMLElement; dispose(): void } {
  const healthDot = h('span', { class: 'dot', 'aria-hidden': 'true' });
  const healthText = h('span', {}, 'Checking…');
  const connText = h('span', { class: 'conn' }, 'Connecting…');
  const health = h('p', { class: 'health', role: 'status' }, healthDot, h('span', { class: 'visually-hidden' }, 'Server: '), healthText, h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'), connText);

  const metric = (label: string, id: string) => {
    const dd = h('dd', { id }, '–');
    return { dd, el: h('div', { class: 'metric' }, h('dt', {}, label), dd) };
  };
  const conns = metric('Connections', 'metric-connections');
  const sessions = metric('Sessions', 'metric-sessions');
  const rate = metric('Asks/s', 'metric-asks');
  const uptime = metric('Uptime', 'metric-uptime');
  const counts = live.admin ? h('dl', { class: 'metrics', 'aria-label': 'Server counts' }, conns.el, sessions.el, rate.el, uptime.el) : null;

  const who = h('span', { class: 'me' }, '…');
  const role = badge(live.me.role, live.admin ? 'info' : 'muted');
  const signOut = h('button', { type: 'button', class: 'btn btn-quiet' }, 'Sign out');
  signOut.addEventListener('click', onSignOut);

  const element = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'topbar-row' }, h('div', { class: 'brand' }, h('img', { src: 'favicon.svg', alt: '', width: 24, height: 24 }), h('span', {}, 'Greenroom')), health, h('div', { class: 'account' }, who, role, signOut)),
    counts,
  );

  const showHealth = () => {
    const [text, tone] = { unknown: ['Checking…', 'muted'], ok: ['Healthy', 'ok'], 'not-ready': ['Store not ready', 'bad'], down: ['Unreachable', 'bad'] }[live.health];
    setText(healthText, text!);
    setAttr(healthDot, 'class', `dot dot-${tone}`);
  };
  const showConnection = () => {
    const text = { idle: 'Connecting…', connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Disconnected', signedOut: 'Signed out', blocked: 'Blocked' }[live.connection];
    setText(connText, text);
    setAttr(connText, 'class', `conn conn-${live.connection}`);
  };
  const showStats = () => {
    const s = live.stats;
    if (!s) return;
    setText(conns.dd, String(s.connections));
    setText(sessions.dd, String(s.sessions));
    setText(rate.dd, formatRate(s.asksPerSecond));
    setText(uptime.dd, formatDuration(s.uptime));
  };
  const showMe = () => {
    setText(who, live.self?.username ?? '…');
    updateBadge(role, live.self?.role ?? live.me.role, live.admin ? 'info' : 'muted');
  };
  const off = [live.on('health', showHealth), live.on('connection', showConnection), live.on('stats', showStats), live.on('role', showMe), live.on('users', showMe)];
  showHealth();
  showConnection();
  return { element, dispose: () => off.forEach((f) => f()) };
}
