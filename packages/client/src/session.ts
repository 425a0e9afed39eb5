/**
 * Credentials and refresh. However many callers need a refresh at once — asks, the timer, reconnects — one
 * `/auth/refresh` request is in flight (single flight); in a browser, cookie sessions are shared by every tab of a
 * profile, so the refresh also takes a Web Lock and skips the request when another tab has just refreshed.
 */
import type { TokenPair } from '@greenroom/protocol';
import { GreenroomClientError, type ClientErrorCode } from './errors.js';

export type { TokenPair };

export type AuthOptions =
  /** Tokens held in memory: Node sends the bearer header; a browser page fetches a one-use ticket per connect. */
  | { mode: 'tokens'; tokens: TokenPair; onTokens?: (tokens: TokenPair) => void }
  /** HttpOnly cookies set by the server (same-origin pages). `accessExpiresAt` from the login answer, if known. */
  | { mode: 'cookie'; accessExpiresAt?: number };

export interface ConnectTarget {
  url: string;
  headers?: Record<string, string>;
}

const LOCK = 'greenroom-refresh';
const SHARED_KEY = 'greenroom:refresh';

type Fetch = typeof fetch;

async function errorOf(res: Response): Promise<GreenroomClientError> {
  let code: ClientErrorCode = 'UNAVAILABLE';
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code as ClientErrorCode;
    if (body.error?.message) message = body.error.message;
  } catch {
    /* not JSON */
  }
  return new GreenroomClientError(code, message, res.status);
}

/**
 * The device id a server issued to this browser profile, kept per server origin (an id is a credential of that server
 * alone), if any. Node keeps none: pass `deviceId` yourself.
 */
function storedDevice(baseUrl: string): { get(): string | undefined; set(id: string): void } {
  const key = `greenroom:device:${new URL(baseUrl).origin}`;
  const storage = (() => {
    try {
      return (globalThis as { localStorage?: Storage }).localStorage ?? null;
    } catch {
      return null;
    }
  })();
  return {
    get: () => storage?.getItem(key) ?? undefined,
    set: (id) => {
      try {
        storage?.setItem(key, id);
      } catch {
        /* storage full or blocked: the next login gets a fresh id */
      }
    },
  };
}

/**
 * POST /auth/login; in a browser, also sets the session cookies for this origin. The answer's `deviceId` is the
 * server's id for this device: a browser keeps it (localStorage) and sends it with every later login, so a user
 * locked out by guesses from elsewhere can still sign in here. In Node, keep `pair.deviceId` and pass it back.
 */
export function login(baseUrl: string, credentials: { username: string; password: string; deviceId?: string }, fetchImpl: Fetch = fetch): Promise<TokenPair> {
  return signIn(baseUrl, '/auth/login', credentials, fetchImpl);
}

/**
 * POST /auth/guest: a session for a new `guest` user (in a browser, with its cookies). The device id is kept and
 * sent as `login` does it; a device the server has blocked is refused (`BLOCKED`), and so is every guest when the
 * server disables them (`FORBIDDEN`).
 */
export function signInAsGuest(baseUrl: string, options: { deviceId?: string } = {}, fetchImpl: Fetch = fetch): Promise<TokenPair> {
  return signIn(baseUrl, '/auth/guest', options, fetchImpl);
}

/** The sign-in routes: post the body with this device's id, keep the id the server answers with. */
async function signIn(baseUrl: string, path: string, body: { deviceId?: string }, fetchImpl: Fetch): Promise<TokenPair> {
  const device = storedDevice(baseUrl);
  const deviceId = body.deviceId ?? device.get();
  const res = await fetchImpl(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, ...(deviceId ? { deviceId } : {}) }),
    credentials: 'include',
  });
  if (!res.ok) throw await errorOf(res);
  const pair = (await res.json()) as TokenPair;
  if (pair.deviceId && pair.deviceId !== deviceId) device.set(pair.deviceId);
  return pair;
}

export class Session {
  private refreshing: Promise<void> | null = null;
  private tokens: TokenPair | null;
  private accessExpiresAt: number | undefined;
  /** `/auth/refresh` requests this client has sent (for tests of single flight). */
  refreshRequests = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly auth: AuthOptions,
    private readonly fetchImpl: Fetch,
    private readonly canSendHeaders: boolean,
  ) {
    this.tokens = auth.mode === 'tokens' ? auth.tokens : null;
    this.accessExpiresAt = auth.mode === 'tokens' ? auth.tokens.accessExpiresAt : auth.accessExpiresAt;
  }

  /** When the access credential expires, if known. */
  get expiresAt(): number | undefined {
    return this.accessExpiresAt;
  }

  /** Where and how to open the next socket. */
  async connectTarget(): Promise<ConnectTarget> {
    const ws = `${this.baseUrl.replace(/^http/, 'ws')}/ws`;
    if (this.accessExpiresAt !== undefined && this.accessExpiresAt <= Date.now()) await this.refresh();
    if (!this.tokens) return { url: ws }; // the browser sends the cookie itself
    if (this.canSendHeaders) return { url: ws, headers: { Authorization: `Bearer ${this.tokens.accessToken}` } };
    const res = await this.fetchImpl(`${this.baseUrl}/auth/ticket`, { method: 'POST', headers: { Authorization: `Bearer ${this.tokens.accessToken}` } });
    if (!res.ok) throw await errorOf(res);
    const { ticket } = (await res.json()) as { ticket: string };
    return { url: `${ws}?ticket=${encodeURIComponent(ticket)}` };
  }

  /** Refreshes the credentials; concurrent calls share one request. Rejects with the server's code if refused. */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    type Locks = { request(name: string, options: { ifAvailable: true }, fn: (lock: unknown) => Promise<void>): Promise<void>; request(name: string, fn: () => Promise<void>): Promise<void> };
    const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
    if (this.auth.mode === 'cookie' && locks) {
      // Free: nobody refreshes the shared cookies now, so this tab does. Taken: another tab of this profile is
      // refreshing them right now; wait for it to finish and adopt its refresh instead of making a second one. (Not
      // localStorage alone: a write in one tab reaches another tab's reads a little later, so it cannot tell.)
      let waited = false;
      await locks.request(LOCK, { ifAvailable: true }, async (lock) => {
        if (lock) await this.request();
        else waited = true;
      });
      if (waited) {
        await locks.request(LOCK, async () => {
          const shared = readShared();
          if (shared) this.accessExpiresAt = Math.max(this.accessExpiresAt ?? 0, shared.accessExpiresAt);
        });
      }
      return;
    }
    await this.request();
  }

  private async request(): Promise<void> {
    this.refreshRequests += 1;
    const body = this.tokens ? JSON.stringify({ refreshToken: this.tokens.refreshToken }) : '{}';
    const res = await this.fetchImpl(`${this.baseUrl}/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      credentials: 'include',
    });
    if (!res.ok) throw await errorOf(res);
    const pair = (await res.json()) as TokenPair;
    this.accessExpiresAt = pair.accessExpiresAt;
    if (this.tokens && this.auth.mode === 'tokens') {
      this.tokens = pair;
      this.auth.onTokens?.(pair);
    }
    writeShared({ at: Date.now(), accessExpiresAt: pair.accessExpiresAt });
  }
}

interface SharedStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** localStorage where there is one (a browser): synchronous and shared by the tabs of a profile. */
function storage(): SharedStorage | undefined {
  try {
    return (globalThis as { localStorage?: SharedStorage }).localStorage;
  } catch {
    return undefined;
  }
}

function readShared(): { at: number; accessExpiresAt: number } | null {
  try {
    const raw = storage()?.getItem(SHARED_KEY);
    return raw ? (JSON.parse(raw) as { at: number; accessExpiresAt: number }) : null;
  } catch {
    return null;
  }
}

function writeShared(value: { at: number; accessExpiresAt: number }): void {
  try {
    storage()?.setItem(SHARED_KEY, JSON.stringify(value));
  } catch {
    /* storage unavailable: tabs then refresh on their own */
  }
}
