/**
 * Helpers shared by the server's test files (test-only; not part of the exported harness).
 */
import { spawn } from 'node:child_process';
import { afterAll } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { internals } from '../src/server.js';
import { DEFAULT_STORE_FILE } from '../src/store/lowdb-store.js';
import { TestClient, type TestServer } from '../src/testing/index.js';

/** Every collection the server's store holds. */
export const STORE_COLLECTIONS = ['users', 'sessions', 'fingerprints', 'meta'] as const;

/** Every record (read page by page) and the count of each of `collections` in the server's store, keyed by collection. */
export async function storeContents(
  server: TestServer,
  collections: readonly string[] = STORE_COLLECTIONS,
): Promise<Record<string, { count: number; items: unknown[] }>> {
  const store = internals(server).store;
  const out: Record<string, { count: number; items: unknown[] }> = {};
  for (const collection of collections) {
    const items: unknown[] = [];
    let after: string | undefined;
    do {
      const page = await store.scan(collection, { after, limit: 500 });
      items.push(...page.items);
      after = page.next ?? undefined;
    } while (after);
    out[collection] = { count: await store.count(collection), items };
  }
  return out;
}

/** The store file's bytes on disk at this moment. */
export function storeFileBytes(server: TestServer): Promise<Buffer> {
  return readFile(join(server.dataDir, DEFAULT_STORE_FILE));
}

/** An HTTP answer read whole: the JSON body (undefined if empty) and the Set-Cookie headers. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  cookies: string[];
}

/**
 * A raw node:http request function over `agent` (POST unless `method` says otherwise), so every header (Origin,
 * Cookie) is exactly what the test says; `body` is sent as JSON.
 */
export function httpRequester(agent: http.Agent) {
  return function request(
    server: TestServer,
    path: string,
    options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer> {
    const text = options.body === undefined ? '' : JSON.stringify(options.body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${server.url}${path}`,
        {
          method: options.method ?? 'POST',
          agent,
          headers: {
            ...(text ? { 'Content-Type': 'application/json' } : {}),
            'Content-Length': String(Buffer.byteLength(text)),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw ? JSON.parse(raw) : undefined, cookies: res.headers['set-cookie'] ?? [] });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  };
}

/** A WebSocket connect through TestClient that must be refused: its HTTP status and JSON body (throws if the socket opens). */
export async function refusedUpgrade(
  server: TestServer,
  token: string | undefined,
  options: { headers?: Record<string, string>; query?: string } = {},
): Promise<{ status: number; body: any }> {
  const outcome = await TestClient.connect(server, token, options).then(
    async (c) => {
      await c.close();
      return null;
    },
    (err: { status?: number; body?: string }) => err,
  );
  if (outcome === null) throw new Error('the upgrade was accepted');
  return { status: outcome.status ?? 0, body: outcome.body ? JSON.parse(outcome.body) : undefined };
}

/** What a run of the `greenroom` command printed, and how it exited. */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `greenroom <args>` from the sources, with only the GREENROOM_* variables given here (none inherited). */
export function greenroom(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENROOM_') && k !== 'INIT_CWD'));
  const child = spawn(process.execPath, ['bin/greenroom-dev.mjs', ...args], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...base, GREENROOM_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Makes temp dirs for one test file, all removed after its tests (call at the top level of the file). */
export function tempDirs(): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return async (prefix) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
