/**
 * `/ws` asked without a WebSocket upgrade (docs/operations.md): GET and HEAD get 426 Upgrade Required with `Upgrade: websocket`
 * and `Connection: Upgrade` and the JSON error body saying what to send — never the dashboard's 404, even with a
 * static dir that holds a file named `ws`. Other methods get 405 with `Allow`. A real upgrade still gets its 101.
 * Real server on loopback, requests sent with node:http so the test sees status, headers and body as sent.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequest, issueSession, startTestServer, TestClient, type HttpAnswer, type TestServer } from '../src/testing/index.js';

let server: TestServer;
let staticDir: string;

beforeAll(async () => {
  staticDir = await mkdtemp(join(tmpdir(), 'greenroom-static-'));
  await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>dashboard</title>');
  // A file the static handler would serve for GET /ws if the route did not answer first.
  await writeFile(join(staticDir, 'ws'), 'not the endpoint');
  server = await startTestServer({ staticDir });
});

afterAll(async () => {
  await server?.close();
  await rm(staticDir, { recursive: true, force: true });
});

function expectUpgradeRequired(answer: HttpAnswer): void {
  expect(answer.status).toBe(426);
  expect(answer.headers.upgrade).toBe('websocket');
  expect(answer.headers.connection).toMatch(/^upgrade$/i);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
}

describe('GET /ws without an Upgrade header', () => {
  it.each([
    ['no credential', '/ws', {}],
    ['a bearer token', '/ws', { Authorization: 'Bearer x.y.z' }],
    ['a query string', '/ws?ticket=abc', {}],
    ['Upgrade: websocket but no Connection: Upgrade', '/ws', { Upgrade: 'websocket' }],
  ] as const)('with %s is 426 UPGRADE_REQUIRED, saying what to send', async (_name, path, headers) => {
    const answer = await httpRequest(server, path, { headers });
    expectUpgradeRequired(answer);
    const body = answer.body as { error: { code: string; message: string } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
    expect(body.error.code).toBe('UPGRADE_REQUIRED');
    expect(body.error.message).toMatch(/WebSocket upgrade/);
    expect(body.error.message).toMatch(/bearer token/);
    expect(body.error.message).toContain('?ticket=');
    expect(body.error.message).toMatch(/session cookie/);
    expect(answer.headers['content-length']).toBe(String(Buffer.byteLength(answer.text)));
  });

  it('HEAD /ws is 426 with the same headers and no body', async () => {
    const get = await httpRequest(server, '/ws');
    const head = await httpRequest(server, '/ws', { method: 'HEAD' });
    expectUpgradeRequired(head);
    expect(head.text).toBe('');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
  });

  it.each(['POST', 'PUT', 'DELETE'])('%s /ws is 405 METHOD_NOT_ALLOWED with Allow: GET, HEAD, OPTIONS', async (method) => {
    const answer = await httpRequest(server, '/ws', { method });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(answer.body).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: expect.any(String) } });
  });

  it('leaves the dashboard and the other routes as they were (HEAD answered like GET)', async () => {
    const page = await httpRequest(server, '/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('dashboard');
    expect((await httpRequest(server, '/healthz', { method: 'HEAD' })).status).toBe(200);
    expect((await httpRequest(server, '/ws/')).status).toBe(404);
    const post = await httpRequest(server, '/healthz', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD, OPTIONS');
  });

  it('does not stand in the way of a real upgrade: the same path with one gets its 101', async () => {
    const s = await issueSession(server);
    const client = await TestClient.connect(server, s.accessToken);
    try {
      expect((await client.ask('UserStore', 'GetOwn')).ok).toBe(true);
    } finally {
      await client.close();
    }
  });
});
