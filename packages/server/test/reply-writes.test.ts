/**
 * Replies to one socket in one tick leave in one write (gateway/connection.ts): asks that arrive together are
 * answered in one actor turn, and their replies are written to the socket together, not one system write each.
 * The client speaks raw WebSocket frames over the upgraded socket, so that all its asks reach the server in one
 * TCP write; the server side's writes are counted on its real socket.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { eventually, issueSession, rawUpgrade, startTestServer, type TestServer } from '../src/testing/index.js';

/** A masked client text frame (RFC 6455 §5.2). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, masked]);
}

/** The text frames in `data` (unmasked server frames under 64 KiB), and whatever is left of an incomplete one. */
function serverFrames(data: Buffer): { frames: string[]; rest: Buffer } {
  const frames: string[] = [];
  let at = 0;
  for (;;) {
    if (data.length - at < 2) break;
    let length = data[at + 1]! & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (data.length - at < 4) break;
      length = data.readUInt16BE(at + 2);
      start = at + 4;
    }
    if (data.length < start + length) break;
    frames.push(data.subarray(start, start + length).toString());
    at = start + length;
  }
  return { frames, rest: data.subarray(at) };
}

describe('replies to one socket', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { askRate: 10_000, askBurst: 10_000 } });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answered in one tick leave in one write, each reply whole and in order', async () => {
    const s = await issueSession(server);
    let serverSide: Socket | undefined;
    server.server.once('connection', (socket: Socket) => (serverSide = socket));
    const answer = await rawUpgrade(server, s.accessToken);
    expect(answer.status).toBe(101);
    const client = answer.socket!;

    // Every write the server's socket makes from here on (writes that a cork gathers arrive as one _writev).
    let writes = 0;
    const socket = serverSide! as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = socket._write.bind(socket);
    const writev = socket._writev.bind(socket);
    socket._write = (...a) => {
      writes += 1;
      write(...a);
    };
    socket._writev = (...a) => {
      writes += 1;
      writev(...a);
    };

    const replies: string[] = [];
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      const { frames, rest } = serverFrames(Buffer.concat([pending, chunk]));
      replies.push(...frames);
      pending = rest;
    });
    // As many as one connection may have in flight (beyond that, RATE_LIMITED answers would be written at once).
    const asks = server.config.maxAsksInFlight;
    client.write(Buffer.concat(Array.from({ length: asks }, (_, i) => clientFrame(JSON.stringify({ id: i, to: 'UserStore', type: 'GetOwn' })))));
    await eventually(() => replies.length === asks, { intervalMs: 5 });

    const frames = replies.map((r) => JSON.parse(r) as { id: number; ok: boolean; result?: { uid: string } });
    expect(frames.map((f) => f.id)).toEqual([...Array(asks).keys()]);
    expect(frames.every((f) => f.ok && f.result?.uid === s.uid)).toBe(true);
    // An actor turn answers many at once, and its replies share a write (without the cork: one write per reply).
    // A turn may end early on a busy machine (its time budget), hence a few writes at most rather than exactly one.
    expect(writes).toBeLessThanOrEqual(asks / 4);
    client.destroy();
  });
});
