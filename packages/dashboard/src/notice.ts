/**
 * Outcome messages: a polite live region for what worked, an alert for what failed (kept until dismissed).
 */
import { h, replace } from './dom.js';

export class Notices {
  readonly element: HTMLElement;
  private readonly status: HTMLElement;
  private readonly alert: HTMLElement;
  private statusTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    this.status = h('p', { class: 'notice notice-ok', role: 'status', hidden: true });
    this.alert = h('div', { class: 'notice notice-error', role: 'alert', hidden: true });
    this.element = h('div', { class: 'notices' }, this.status, this.alert);
  }

  ok(message: string): void {
    this.status.textContent = message;
    this.status.hidden = false;
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => {
      this.status.hidden = true;
      this.status.textContent = '';
    }, 6000);
  }

  error(message: string): void {
    const dismiss = h('button', { type: 'button', class: 'btn btn-quiet' }, 'Dismiss');
    dismiss.addEventListener('click', () => this.clearError());
    replace(this.alert, h('span', {}, message), dismiss);
    this.alert.hidden = false;
  }

  clearError(): void {
    this.alert.hidden = true;
    this.alert.replaceChildren();
  }

  dispose(): void {
    clearTimeout(this.statusTimer);
  }
}

/** A readable sentence for a failed ask or request. */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string } | null;
  switch (e?.code) {
    case 'FORBIDDEN':
      return 'You are not allowed to do that.';
    case 'NOT_FOUND':
      return 'It no longer exists.';
    case 'CONFLICT':
      return e.message ? `${capitalize(e.message)}.` : 'That conflicts with an existing record.';
    case 'BAD_PAYLOAD':
      return e.message ? `Invalid input: ${e.message}` : 'Invalid input.';
    case 'RATE_LIMITED':
      return 'Too many requests; wait a moment and try again.';
    case 'TIMEOUT':
    case 'UNAVAILABLE':
    case 'CONNECTION_LOST':
      return 'The server did not answer; try again.';
    default:
      return e?.message ? capitalize(e.message) : 'Something went wrong.';
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
