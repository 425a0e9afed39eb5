import type { Live } from './live.js';
import type { Notices } from './notice.js';

/** What every view gets from the shell. */
export interface ViewContext {
  live: Live;
  notices: Notices;
  /** Ends this page's own session (logout) and shows the login page. */
  signOut(message?: string): void;
}

export interface View {
  id: string;
  label: string;
  panel: HTMLElement;
  dispose(): void;
}

/** Runs an action once at a time per control: repeated clicks while it runs are ignored. */
export function guarded(button: HTMLElement, action: () => Promise<void>): () => void {
  return () => {
    if (button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    action().finally(() => button.removeAttribute('aria-busy'));
  };
}

/** Runs `fn` at most once per animation frame however many updates arrive (a burst of pushes renders once). */
export function coalesced(fn: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}
