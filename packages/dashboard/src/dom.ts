/**
 * DOM helpers. Data only ever reaches the page as text (textContent, attribute values): never as HTML.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

/** Creates an element with attributes (`true` → present, `false`/null/undefined → absent) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** Sets text only when it changed (keeps screen readers and selection calm on live updates). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) el.removeAttribute(name);
  else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

const dateTime = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
const shortTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const clockTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function isToday(d: Date): boolean {
  const now = new Date();
  return d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
}

/** A `<time>` element for an epoch-ms timestamp (or "Never"); the full date and time is in its title. */
export function timeEl(ms: number | null, never = 'Never'): HTMLElement {
  const el = h('time');
  updateTime(el, ms, never);
  return el;
}

export function updateTime(el: HTMLElement, ms: number | null, never = 'Never'): void {
  if (ms === null) {
    setText(el, never);
    setAttr(el, 'datetime', null);
    setAttr(el, 'title', null);
    return;
  }
  const d = new Date(ms);
  // Today: the time to the second (what changed just now is what an admin looks for); before: date and time.
  setText(el, isToday(d) ? clockTime.format(d) : shortTime.format(d));
  setAttr(el, 'datetime', d.toISOString());
  setAttr(el, 'title', dateTime.format(d));
}

/** A fingerprint is long; show its start, with the whole value in the title (and to screen readers). */
export function shortFingerprint(fp: string): string {
  return fp.length > 15 ? `${fp.slice(0, 13)}…` : fp;
}

export function fingerprintEl(fp: string): HTMLElement {
  const short = shortFingerprint(fp);
  if (short === fp) return h('code', { class: 'fp' }, fp);
  return h('code', { class: 'fp', title: fp }, h('span', { 'aria-hidden': 'true' }, short), h('span', { class: 'visually-hidden' }, fp));
}

export function badge(text: string, tone: 'ok' | 'bad' | 'info' | 'muted'): HTMLElement {
  return h('span', { class: `badge badge-${tone}` }, text);
}

export function updateBadge(el: HTMLElement, text: string, tone: 'ok' | 'bad' | 'info' | 'muted'): void {
  setText(el, text);
  setAttr(el, 'class', `badge badge-${tone}`);
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d`;
}

export function formatRate(n: number): string {
  return n >= 100 ? String(Math.round(n)) : n.toFixed(1);
}
