/**
 * Fingerprints (admins only): the devices seen at sign-in, most recently seen first, each with its owner.
 * Blocking a device blocks its owner by uid (every session revoked, connections closed); unblocking clears both.
 */
import { confirmAction } from '../confirm.js';
import { badge, fingerprintEl, h, setAttr, setText, shortFingerprint, timeEl, updateBadge, updateTime } from '../dom.js';
import { describeError } from '../notice.js';
import { cell, headerCell, KeyedTable, row, type Row } from '../table.js';
import { rowKey } from '../live.js';
import type { FingerprintView } from '../types.js';
import { coalesced, guarded, type View, type ViewContext } from '../view.js';

export function fingerprintsView(ctx: ViewContext): View {
  const { live, notices } = ctx;
  const me = live.me;
  const ownerOf = (f: FingerprintView) => live.userName(f.uid) ?? 'unknown user';

  const setBlocked = async (f: FingerprintView, blocked: boolean) => {
    const short = shortFingerprint(f.fingerprint);
    const owner = ownerOf(f);
    if (blocked) {
      const ok = await confirmAction({
        title: `Block device ${short}?`,
        message: `Its owner ${owner} is blocked too: every session of ${owner} is revoked now, their connections close, and they cannot sign in until unblocked.`,
        confirmLabel: 'Block device and owner',
      });
      if (!ok) return;
    }
    try {
      const user = await live.blockFingerprint(f, blocked);
      notices.ok(blocked ? `Blocked device ${short} and its owner ${user.username}.` : `Unblocked device ${short} and its owner ${user.username}.`);
    } catch (err) {
      notices.error(`Could not ${blocked ? 'block' : 'unblock'} device ${short}: ${describeError(err)}`);
    }
  };

  const createRow = (first: FingerprintView): Row<FingerprintView> => {
    let current = first;
    const owner = h('span', { class: 'name' });
    const you = badge('You', 'info');
    const firstSeen = timeEl(first.firstSeen);
    const lastSeen = timeEl(first.lastSeen);
    const count = h('span', { class: 'count' });
    const status = badge('', 'ok');
    const toggle = h('button', { type: 'button', class: 'btn btn-small' });
    toggle.addEventListener('click', guarded(toggle, () => setBlocked(current, !current.blocked)));
    const tr = row(
      headerCell('Device', fingerprintEl(first.fingerprint)),
      cell('Owner', h('span', { class: 'who' }, owner, ' ', you)),
      cell('First seen', firstSeen),
      cell('Last seen', lastSeen),
      cell('Count', count),
      cell('Status', status),
      cell('Actions', h('div', { class: 'actions' }, toggle)),
    );
    return {
      tr,
      update(f) {
        current = f;
        const name = ownerOf(f);
        const mine = f.uid === me.uid;
        setText(owner, name);
        you.hidden = !mine;
        updateTime(firstSeen, f.firstSeen);
        updateTime(lastSeen, f.lastSeen);
        setText(count, String(f.count));
        updateBadge(status, f.blocked ? 'Blocked' : 'Allowed', f.blocked ? 'bad' : 'ok');
        setText(toggle, f.blocked ? 'Unblock' : 'Block');
        setAttr(toggle, 'class', f.blocked ? 'btn btn-small' : 'btn btn-small btn-danger-quiet');
        setAttr(toggle, 'aria-label', `${f.blocked ? 'Unblock' : 'Block'} device ${shortFingerprint(f.fingerprint)} of ${name}`);
        toggle.disabled = mine && !f.blocked;
        setAttr(toggle, 'title', toggle.disabled ? 'You cannot block your own device' : null);
        tr.classList.toggle('is-blocked', f.blocked);
      },
    };
  };

  const table = new KeyedTable<FingerprintView>({
    id: 'fingerprints-table',
    headers: ['Device', 'Owner', 'First seen', 'Last seen', 'Count', 'Status', 'Actions'],
    key: rowKey,
    createRow,
    empty: 'No devices seen yet. A device appears here at its first sign-in.',
    noun: 'fingerprints',
  });
  const more = h('p', { class: 'muted', hidden: true }, 'Only the 500 most recently seen devices are shown.');

  const render = () => {
    const items = [...live.fingerprints.values()].sort((a, b) => b.lastSeen - a.lastSeen || (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0));
    const blocked = items.filter((f) => f.blocked).length;
    table.render(items, `${items.length} ${items.length === 1 ? 'device' : 'devices'}, ${blocked} blocked; most recently seen first`);
    table.setLoad(live.loads.fingerprints, () => void live.reload());
    more.hidden = !live.fingerprintsTruncated;
  };

  const panel = h(
    'section',
    { id: 'panel-fingerprints', class: 'panel', role: 'tabpanel', 'aria-labelledby': 'tab-fingerprints', tabindex: '-1' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Fingerprints'), h('p', { class: 'muted' }, 'Devices seen at sign-in, most recent first. Blocking a device also blocks the user who owns it.')),
    table.element,
    more,
  );
  const later = coalesced(render);
  const off = [live.on('fingerprints', later), live.on('users', later)];
  render();
  return { id: 'fingerprints', label: 'Fingerprints', panel, dispose: () => off.forEach((f) => f()) };
}
