/**
 * Signing in and out with the server's HttpOnly cookies (the page never stores a token).
 *
 * On load the page must learn whether this browser still has a session. Only `POST /auth/refresh` can tell
 * (the cookies are HttpOnly), and a browser logs every 4xx answer to the console, so the page asks only when it
 * signed in before: a flag in localStorage, set at sign-in and cleared at sign-out or when the session ends.
 */
import { GreenroomClientError, login } from '@greenroom/client';
import type { Me } from './types.js';

const SIGNED_IN = 'greenroom:dashboard:signed-in';

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function remember(on: boolean): void {
  try {
    if (on) storage()?.setItem(SIGNED_IN, '1');
    else storage()?.removeItem(SIGNED_IN);
  } catch {
    /* storage unavailable: the page asks the server on every load instead */
  }
}

function meOf(body: { uid: string; role: string; sid: string; accessExpiresAt: number }): Me {
  return { uid: body.uid, role: body.role, sid: body.sid, accessExpiresAt: body.accessExpiresAt };
}

/**
 * The session this browser still holds, or why there is none: `ended` says why a remembered session is gone (shown
 * on the login page); neither means this browser never signed in (or signed out).
 */
export async function resume(): Promise<{ me: Me } | { ended?: string }> {
  const s = storage();
  if (s && s.getItem(SIGNED_IN) === null) return {};
  const res = await fetch('/auth/refresh', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  if (res.ok) return { me: meOf((await res.json()) as Me) };
  if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
  remember(false);
  return { ended: res.status === 403 ? 'This account has been blocked.' : 'Your session has ended. Sign in again.' };
}

/** Signs in; the answer sets the session cookies for this origin. Rejects with a GreenroomClientError. */
export async function signIn(username: string, password: string): Promise<Me> {
  // The client keeps the server-issued device id of this browser and sends it with the login.
  const pair = await login(location.origin, { username, password });
  remember(true);
  return meOf(pair);
}

/** Ends this session at the server (its sockets close, the cookies are cleared). */
export async function signOut(): Promise<void> {
  remember(false);
  await fetch('/auth/logout', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  }).catch(() => undefined);
}

/** The session ended elsewhere (revoked, blocked, expired): forget it. */
export function forget(): void {
  remember(false);
}

export function loginErrorText(err: unknown): string {
  if (err instanceof GreenroomClientError) {
    switch (err.code) {
      case 'INVALID_CREDENTIALS':
        return 'Wrong username or password.';
      case 'BLOCKED':
        return 'This account is blocked. Ask an administrator to unblock it.';
      case 'RATE_LIMITED':
        return 'Too many failed attempts. Wait a while before trying again.';
      case 'BAD_REQUEST':
        return 'Enter a username and a password.';
      case 'BAD_ORIGIN':
        return 'This page is not allowed to sign in to this server.';
      default:
        return err.status && err.status >= 500 ? 'The server is unavailable. Try again shortly.' : err.message;
    }
  }
  return 'Cannot reach the server. Check the connection and try again.';
}
