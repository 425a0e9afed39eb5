/**
 * How the `greenroom user …` commands reach the actors. When a server is up they talk to it like any client
 * (HTTP login as an admin, then asks over a WebSocket); when none is, they open the store under the same lock and
 * ask the actors in-process. Either way the same actor messages run, and no file the server has open is written.
 */
import WebSocket from 'ws';
import { parseServerFrame } from '@greenroom/protocol';
import type { Config } from './config.js';
import { GreenroomError } from './errors.js';
import { createLogger } from './log.js';
import { createCore } from './server.js';

export interface AdminChannel {
  readonly mode: 'remote' | 'local';
  ask<R = unknown>(actor: string, type: string, payload?: unknown): Promise<R>;
  close(): Promise<void>;
}

function baseUrl(config: Config): string {
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}`;
}

async function serverIsUp(config: Config): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl(config)}/healthz`, { signal: AbortSignal.timeout(1500) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function openAdminChannel(config: Config): Promise<AdminChannel> {
  if (await serverIsUp(config)) return openRemote(config);
  const core = await createCore({ config, env: {}, logger: createLogger({ level: 'silent' }) });
  return {
    mode: 'local',
    ask: (actor, type, payload = {}) => core.registry.ask(actor, type, payload),
    close: () => core.close(),
  };
}

async function openRemote(config: Config): Promise<AdminChannel> {
  if (!config.admin) {
    throw new Error(`a server is running at ${baseUrl(config)}; set GREENROOM_ADMIN=name:password to administer it through it`);
  }
  const res = await fetch(`${baseUrl(config)}/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: config.admin.username, password: config.admin.password, deviceId: 'greenroom-cli' }),
  });
  const body = (await res.json()) as { accessToken?: string; error?: { code: string; message: string } };
  if (!res.ok || !body.accessToken) throw new Error(`admin login failed: ${body.error?.code ?? res.status}`);
  const ws = new WebSocket(`${baseUrl(config).replace(/^http/, 'ws')}/ws`, { headers: { Authorization: `Bearer ${body.accessToken}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const pending = new Map<string, { resolve(v: unknown): void; reject(e: unknown): void }>();
  ws.on('message', (data) => {
    const frame = parseServerFrame(data.toString());
    if (!frame || 'event' in frame || frame.id === null) return;
    const p = pending.get(String(frame.id));
    pending.delete(String(frame.id));
    if (frame.ok) p?.resolve(frame.result);
    else p?.reject(new GreenroomError(frame.error.code, frame.error.message));
  });
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('the server closed the connection'));
    pending.clear();
  });
  let next = 0;
  return {
    mode: 'remote',
    ask: <R>(to: string, type: string, payload: unknown = {}) =>
      new Promise<R>((resolve, reject) => {
        const id = String(++next);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        ws.send(JSON.stringify({ id, to, type, payload }));
      }),
    close: async () => {
      ws.close(1000);
    },
  };
}
