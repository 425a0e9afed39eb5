/**
 * A TCP proxy under the test's control, standing for the network between two parties: a node and its Redis, or
 * clients and the servers they reach.
 *
 * `cut()` is a partition: live connections are destroyed, and new ones are either held silent (`blackhole`: the
 * connect succeeds and nothing ever answers, as behind a dropped route) or reset at once (`refuse`), until
 * `restore()`. With several upstreams it fails over as a load balancer's backup servers do: each new connection goes
 * to the first upstream that accepts it.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type CutMode = 'blackhole' | 'refuse';

export class TcpProxy {
  private cutMode: CutMode | null = null;
  /** Every socket of a forwarded connection, both sides. */
  private readonly live = new Set<Socket>();
  /** Connections accepted while cut in blackhole mode: never read, never answered. */
  private readonly held = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly upstreams: readonly number[],
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free 127.0.0.1 port, forwarding to the first of `upstreams` (127.0.0.1 ports) that accepts. */
  static async start(upstreams: number | readonly number[]): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    const proxy = new TcpProxy(server, typeof upstreams === 'number' ? [upstreams] : upstreams);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Destroys every live connection; new ones are held silent (`blackhole`, the default) or reset (`refuse`). */
  cut(mode: CutMode = 'blackhole'): void {
    this.cutMode = mode;
    for (const socket of this.live) socket.destroy();
    this.live.clear();
  }

  /** New connections are forwarded again; those held while cut are closed (their clients reconnect). */
  restore(): void {
    this.cutMode = null;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.cut('refuse');
    this.restore();
    await closed;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.cutMode === 'refuse') return void client.resetAndDestroy();
    if (this.cutMode === 'blackhole') {
      this.held.add(client);
      client.once('close', () => this.held.delete(client));
      return;
    }
    this.forward(client, 0);
  }

  private forward(client: Socket, index: number): void {
    const upstream = connect(this.upstreams[index]!, '127.0.0.1');
    let connected = false;
    this.live.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.live.delete(client);
      this.live.delete(upstream);
    };
    upstream.once('connect', () => {
      connected = true;
      // The client was paused on accept: what it sent meanwhile flows now.
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => {
      if (connected || index + 1 >= this.upstreams.length || client.destroyed) return end();
      // Not accepted here (refused, a dead node): the next upstream, as a backup server.
      this.live.delete(upstream);
      this.forward(client, index + 1);
    });
    upstream.once('close', () => {
      if (connected) end();
    });
    client.once('close', end);
  }
}
