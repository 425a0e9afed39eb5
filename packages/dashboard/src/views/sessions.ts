/**
 * Sessions: one login on one device each. Admins see every live session (pushed as it is created, connects,
 * disconnects or ends) and may revoke one or all of a user's; everyone else sees and revokes their own.
 */
import { confirmAction } from '../confirm.js';
import { badge, fingerprintEl, h, setAttr, setText, shortFingerprint, timeEl, updateTime } from '../dom.js';
import { describeError } from '../notice.js';
import { cell, headerCell, KeyedTable, row, type Row } from '../table.js';
import { isLive, type SessionView } from '../types.js';
import { coalesced, guarded, type View, type ViewContext } from '../view.js';

export function sessionsView(ctx: ViewContext): View {
  const { live, notices } = ctx;
  const me = live.me;
  const admin = live.admin;

  const nameOf = (uid: string) => live.userName(uid) ?? 'unknown user';
  const isCurrent = (s: SessionView) => s.sid === me.sid || s.current === true;

  const revoke = async (s: SessionView) => {
    if (isCurrent(s)) {
      const ok = await confirmAction({
        title: 'Revoke this session?',
        message: 'This is the session you are using now. Revoking it signs you out of this page.',
        confirmLabel: 'Revoke and sign out',
      });
      if (ok) ctx.signOut('You revoked your session and are signed out.');
      return;
    }
    try {
      await live.revoke(s.sid);
      notices.ok(admin ? `Revoked a session of ${nameOf(s.uid)} (device ${shortFingerprint(s.fingerprint)}).` : `Revoked the session on device ${shortFingerprint(s.fingerprint)}.`);
    } catch (err) {
      notices.error(`Could not revoke the session: ${describeError(err)}`);
    }
  };

  const revokeAll = async (uid: string) => {
    const name = nameOf(uid);
    const theirs = [...live.sessions.values()].filter((s) => s.uid === uid && isLive(s));
    const ok = await confirmAction({
      title: `Revoke all sessions of ${name}?`,
      message:
        uid === me.uid
          ? `All ${theirs.length} of your sessions end now, this one included: you will be signed out.`
          : `All ${theirs.length} of ${name}'s sessions end now and their connections close. ${name} must sign in again.`,
      confirmLabel: 'Revoke all',
    });
    if (!ok) return;
    try {
      if (uid === me.uid) {
        // Your own: end the others, then this page's session by signing out (no socket of ours is cut mid-ask).
        for (const s of theirs) if (!isCurrent(s)) await live.revoke(s.sid);
        ctx.signOut('You revoked all your sessions and are signed out.');
        return;
      }
      const { revoked } = await live.revokeAllForUser(uid);
      notices.ok(`Revoked ${revoked} ${revoked === 1 ? 'session' : 'sessions'} of ${name}.`);
    } catch (err) {
      notices.error(`Could not revoke the sessions of ${name}: ${describeError(err)}`);
    }
  };

  const createRow = (first: SessionView): Row<SessionView> => {
    let current = first;
    const name = h('span', { class: 'name' });
    const mark = badge('This session', 'info');
    const connections = h('span', { class: 'count' });
    const created = timeEl(first.created);
    const lastUsed = timeEl(first.lastUsed);
    const revokeBtn = h('button', { type: 'button', class: 'btn btn-small' }, 'Revoke');
    revokeBtn.addEventListener('click', guarded(revokeBtn, () => revoke(current)));
    const actions = h('div', { class: 'actions' }, revokeBtn);
    let revokeAllBtn: HTMLButtonElement | null = null;
    if (admin) {
      revokeAllBtn = h('button', { type: 'button', class: 'btn btn-small btn-danger-quiet' }, 'Revoke all');
      revokeAllBtn.addEventListener('click', guarded(revokeAllBtn, () => revokeAll(current.uid)));
      actions.append(revokeAllBtn);
    }
    const device = fingerprintEl(first.fingerprint);
    const cells = admin
      ? [headerCell('User', name, ' ', mark), cell('Device', device)]
      : [headerCell('Device', device, ' ', mark)];
    const tr = row(...cells, cell('Created', created), cell('Last used', lastUsed), cell('Connections', connections), cell('Actions', actions));
    return {
      tr,
      update(s) {
        current = s;
        const who = nameOf(s.uid);
        setText(name, who);
        mark.hidden = !isCurrent(s);
        updateTime(created, s.created);
        updateTime(lastUsed, s.lastUsed);
        setText(connections, String(s.connections));
        setAttr(connections, 'class', s.connections > 0 ? 'count count-live' : 'count');
        const label = admin ? `${who}'s session on device ${shortFingerprint(s.fingerprint)}` : `the session on device ${shortFingerprint(s.fingerprint)}`;
        setAttr(revokeBtn, 'aria-label', `Revoke ${isCurrent(s) ? 'this session (signs you out)' : label}`);
        if (revokeAllBtn) setAttr(revokeAllBtn, 'aria-label', `Revoke all sessions of ${who}`);
      },
    };
  };

  const table = new KeyedTable<SessionView>({
    id: 'sessions-table',
    headers: admin ? ['User', 'Device', 'Created', 'Last used', 'Connections', 'Actions'] : ['Device', 'Created', 'Last used', 'Connections', 'Actions'],
    key: (s) => s.sid,
    createRow,
    empty: admin ? 'No live sessions. A session appears here as soon as someone signs in.' : 'You have no other live sessions.',
    noun: 'sessions',
  });

  const render = () => {
    const now = Date.now();
    const items = [...live.sessions.values()].filter((s) => isLive(s, now)).sort((a, b) => b.created - a.created || (a.sid < b.sid ? -1 : 1));
    const connected = items.reduce((n, s) => n + s.connections, 0);
    table.render(items, `${items.length} live ${items.length === 1 ? 'session' : 'sessions'}, ${connected} ${connected === 1 ? 'connection' : 'connections'}; newest first`);
    table.setLoad(live.loads.sessions, () => void live.reload());
  };

  const panel = h(
    'section',
    { id: 'panel-sessions', class: 'panel', role: 'tabpanel', 'aria-labelledby': 'tab-sessions', tabindex: '-1' },
    h('div', { class: 'panel-head' }, h('h2', {}, admin ? 'Sessions' : 'Your sessions'), h('p', { class: 'muted' }, admin ? 'Every live session, by user and device. Updates as people sign in, connect and leave.' : 'The devices you are signed in on. Revoke any you do not recognise.')),
    table.element,
  );

  const later = coalesced(render);
  const off = [live.on('sessions', later), live.on('users', later)];
  render();
  return { id: 'sessions', label: admin ? 'Sessions' : 'Your sessions', panel, dispose: () => off.forEach((f) => f()) };
}
