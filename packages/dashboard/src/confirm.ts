/**
 * Confirmation before a destructive action, in a native modal <dialog>: focus moves into it (to Cancel, the safe
 * choice), Escape cancels, and focus returns to the control that opened it.
 */
import { h } from './dom.js';

export interface ConfirmOptions {
  title: string;
  message: string;
  confirmLabel: string;
}

let dialog: HTMLDialogElement | null = null;

export function confirmAction(options: ConfirmOptions): Promise<boolean> {
  dialog?.remove();
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const title = h('h2', { id: 'confirm-title' }, options.title);
  const message = h('p', { id: 'confirm-message' }, options.message);
  const cancel = h('button', { type: 'button', class: 'btn', autofocus: true }, 'Cancel');
  const confirm = h('button', { type: 'button', class: 'btn btn-danger' }, options.confirmLabel);
  const d = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' }, title, message, h('div', { class: 'dialog-actions' }, cancel, confirm));
  dialog = d;
  document.body.appendChild(d);
  return new Promise((resolve) => {
    cancel.addEventListener('click', () => d.close('cancel'));
    confirm.addEventListener('click', () => d.close('confirm'));
    d.addEventListener('close', () => {
      resolve(d.returnValue === 'confirm');
      d.remove();
      if (dialog === d) dialog = null;
      if (opener?.isConnected) opener.focus();
    });
    d.showModal();
    cancel.focus();
  });
}
