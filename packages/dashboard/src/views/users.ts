/**
 * Users (admins only): create, change role, block and unblock. Blocking revokes every session of the user and
 * closes their connections (4003) before the server answers, so the row shows "Blocked" only once that is done.
 */
import { confirmAction } from '../confirm.js';
import { badge, h, setAttr, setText, timeEl, updateBadge, updateTime } from '../dom.js';
import { describeError } from '../notice.js';
import { cell, headerCell, KeyedTable, row, type Row } from '../table.js';
import type { UserView } from '../types.js';
import { coalesced, guarded, type View, type ViewContext } from '../view.js';

const ROLES = ['user', 'admin', 'guest'];

function createForm(ctx: ViewContext): HTMLElement {
  const { live, notices } = ctx;
  const username = h('input', { id: 'new-username', name: 'username', required: true, maxlength: 64, pattern: '[A-Za-z0-9_.@\\-]+', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'new-username-hint' });
  const password = h('input', { id: 'new-password', name: 'password', type: 'password', required: true, minlength: 8, maxlength: 256, autocomplete: 'new-password', 'aria-describedby': 'new-password-hint' });
  const role = h('select', { id: 'new-role', name: 'role' }, ...ROLES.map((r) => h('option', { value: r }, r)));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'create-user', 'aria-labelledby': 'create-user-title', novalidate: false },
    h('h3', { id: 'create-user-title' }, 'Create a user'),
    h(
      'div',
      { class: 'fields' },
      h('div', { class: 'field' }, h('label', { for: 'new-username' }, 'Username'), username, h('small', { id: 'new-username-hint', class: 'hint' }, 'Letters, digits and _ . @ -')),
      h('div', { class: 'field' }, h('label', { for: 'new-password' }, 'Password'), password, h('small', { id: 'new-password-hint', class: 'hint' }, 'At least 8 characters')),
      h('div', { class: 'field field-narrow' }, h('label', { for: 'new-role' }, 'Role'), role),
      h('div', { class: 'field field-submit' }, submit),
    ),
    error,
  );
  form.addEventListener('input', () => (error.hidden = true));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (submit.getAttribute('aria-busy') === 'true') return;
    submit.setAttribute('aria-busy', 'true');
    error.hidden = true;
    live
      .createUser({ username: username.value.trim(), password: password.value, role: role.value })
      .then(
        (u) => {
          notices.ok(`Created ${u.role} ${u.username}.`);
          form.reset();
          username.focus();
        },
        (err) => {
          error.textContent = `Could not create the user: ${describeError(err)}`;
          error.hidden = false;
        },
      )
      .finally(() => submit.removeAttribute('aria-busy'));
  });
  return form;
}

export function usersView(ctx: ViewContext): View {
  const { live, notices } = ctx;
  const me = live.me;

  const setBlocked = async (u: UserView, blocked: boolean) => {
    if (blocked) {
      const ok = await confirmAction({
        title: `Block ${u.username}?`,
        message: `Every session of ${u.username} is revoked now and their connections close. ${u.username} cannot sign in until unblocked.`,
        confirmLabel: `Block ${u.username}`,
      });
      if (!ok) return;
    }
    try {
      await live.blockUser(u.uid, blocked);
      notices.ok(blocked ? `Blocked ${u.username}; their sessions are revoked.` : `Unblocked ${u.username}; they can sign in again.`);
    } catch (err) {
      notices.error(`Could not ${blocked ? 'block' : 'unblock'} ${u.username}: ${describeError(err)}`);
    }
  };

  const changeRole = async (u: UserView, select: HTMLSelectElement) => {
    const role = select.value;
    if (role === u.role) return;
    try {
      const next = await live.setRole(u.uid, role);
      notices.ok(`${next.username} is now ${next.role}.`);
    } catch (err) {
      notices.error(`Could not change the role of ${u.username}: ${describeError(err)}`);
    }
  };

  const createRow = (first: UserView): Row<UserView> => {
    let current = first;
    const self = first.uid === me.uid;
    const name = h('span', { class: 'name' });
    const display = h('span', { class: 'sub' });
    const you = badge('You', 'info');
    you.hidden = !self;
    const role = h('select', { class: 'role-select' });
    role.disabled = self;
    if (self) role.title = 'You cannot change your own role';
    // A role is applied with Save, not on change: arrow keys on a focused select change its value at once.
    const save = h('button', { type: 'button', class: 'btn btn-small btn-primary', hidden: true }, 'Save');
    role.addEventListener('change', () => (save.hidden = role.value === current.role));
    save.addEventListener(
      'click',
      guarded(save, async () => {
        await changeRole(current, role);
        if (role.value === current.role) {
          save.hidden = true;
          role.focus();
        }
      }),
    );
    const status = badge('', 'ok');
    const lastLogin = timeEl(first.lastLogin);
    const created = timeEl(first.created);
    const toggle = h('button', { type: 'button', class: 'btn btn-small' });
    toggle.addEventListener('click', guarded(toggle, () => setBlocked(current, !current.blocked)));
    if (self) {
      toggle.disabled = true;
      toggle.title = 'You cannot block yourself';
    }
    const tr = row(
      headerCell('Username', h('span', { class: 'who' }, name, ' ', you, display)),
      cell('Role', h('div', { class: 'role-edit' }, role, save)),
      cell('Status', status),
      cell('Last login', lastLogin),
      cell('Created', created),
      cell('Actions', h('div', { class: 'actions' }, toggle)),
    );
    let roles = '';
    return {
      tr,
      update(u) {
        current = u;
        setText(name, u.username);
        setText(display, u.displayName && u.displayName !== u.username ? u.displayName : '');
        const options = ROLES.includes(u.role) ? ROLES : [...ROLES, u.role];
        if (options.join() !== roles) {
          roles = options.join();
          role.replaceChildren(...options.map((r) => h('option', { value: r }, r)));
        }
        if (save.hidden) role.value = u.role;
        else if (role.value === u.role) save.hidden = true;
        setAttr(role, 'aria-label', `Role of ${u.username}`);
        setAttr(save, 'aria-label', `Save the role of ${u.username}`);
        updateBadge(status, u.blocked ? 'Blocked' : 'Active', u.blocked ? 'bad' : 'ok');
        updateTime(lastLogin, u.lastLogin);
        updateTime(created, u.created);
        setText(toggle, u.blocked ? 'Unblock' : 'Block');
        setAttr(toggle, 'class', u.blocked ? 'btn btn-small' : 'btn btn-small btn-danger-quiet');
        setAttr(toggle, 'aria-label', `${u.blocked ? 'Unblock' : 'Block'} ${u.username}`);
        tr.classList.toggle('is-blocked', u.blocked);
      },
    };
  };

  const table = new KeyedTable<UserView>({
    id: 'users-table',
    headers: ['Username', 'Role', 'Status', 'Last login', 'Created', 'Actions'],
    key: (u) => u.uid,
    createRow,
    empty: 'No users yet.',
    noun: 'users',
  });

  const render = () => {
    const items = [...live.users.values()].sort((a, b) => a.username.localeCompare(b.username, undefined, { sensitivity: 'base' }) || (a.uid < b.uid ? -1 : 1));
    const blocked = items.filter((u) => u.blocked).length;
    table.render(items, `${items.length} ${items.length === 1 ? 'user' : 'users'}, ${blocked} blocked; by username`);
    table.setLoad(live.loads.users, () => void live.reload());
  };

  const panel = h(
    'section',
    { id: 'panel-users', class: 'panel', role: 'tabpanel', 'aria-labelledby': 'tab-users', tabindex: '-1' },
    h('div', { class: 'panel-head' }, h('h2', {}, 'Users'), h('p', { class: 'muted' }, 'Accounts, their roles, and who is blocked. Blocking ends every session of the user at once.')),
    createForm(ctx),
    table.element,
  );
  const later = coalesced(render);
  const off = live.on('users', later);
  render();
  return { id: 'users', label: 'Users', panel, dispose: off };
}
