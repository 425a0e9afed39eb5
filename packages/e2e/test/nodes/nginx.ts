/**
 * A real nginx in front of nodes, configured as docs/operations.md shows (Behind nginx): HTTP/1.1 to the upstreams
 * with the Upgrade and Connection headers a WebSocket needs, X-Forwarded-For for the trusted-proxy walk, read and
 * send timeouts above two heartbeats, round-robin with kept-alive upstream connections. Run unprivileged (`nginx -c CONF -p PREFIX -g 'daemon off;'`) on a free port, its
 * config and logs in a temp dir, stopped by its PID. Debian's nginx package (scripts/ensure-nginx.mjs installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The nginx binary: Debian's, or the first on PATH. */
export function nginxPath(): string | null {
  const dirs = ['/usr/sbin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return dirs.map((d) => join(d, 'nginx')).find((p) => existsSync(p)) ?? null;
}

/** Why nginx cannot run here, or null when it can. */
export function nginxUnavailable(): string | null {
  return nginxPath() ? null : 'nginx is missing (the test command installs Debian\'s nginx package as root through apt: scripts/ensure-nginx.mjs)';
}

export interface Nginx {
  /** `http://127.0.0.1:<port>`, nginx's own address. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /**
   * The access log so far, one entry per request nginx finished: the path (no query), the status, and the upstream
   * that served it (`127.0.0.1:<port>`). A WebSocket's entry is written when it closes.
   */
  accessLog(): Promise<Array<{ path: string; status: number; upstream: string }>>;
  /** Stops nginx (SIGQUIT: it closes its connections) and removes its directory. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

// A test process that ends without stop() must not leave nginx behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Two heartbeats (30 s each) and some: nginx must never time out a quiet WebSocket that the server still pings. */
const PROXY_TIMEOUT_S = 75;

function nginxConfig(prefix: string, port: number, upstreams: readonly number[]): string {
  return `worker_processes 1;
# A graceful stop (SIGQUIT) waits this long for open WebSockets, then closes them.
worker_shutdown_timeout 2s;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 1024; }
http {
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  # The path only: a query may hold a ticket.
  log_format upstreams '$uri $status $upstream_addr';
  access_log ${prefix}/access.log upstreams;

  # A WebSocket handshake is passed on as one; any other request may reuse a connection to a node.
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }

  upstream greenroom {
${upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 32;
  }

  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://greenroom;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout ${PROXY_TIMEOUT_S}s;
      proxy_send_timeout ${PROXY_TIMEOUT_S}s;
    }
  }
}
`;
}

/** Starts nginx on a free 127.0.0.1 port, round-robin over `upstreams` (127.0.0.1 ports); resolves once it answers. */
export async function startNginx(upstreams: readonly number[]): Promise<Nginx> {
  const binary = nginxPath();
  if (!binary) throw new Error(nginxUnavailable()!);
  const prefix = await mkdtemp(join(tmpdir(), 'greenroom-nginx-'));
  // Started as root, nginx runs its worker as nobody, which must reach the temp dirs the master makes here.
  await chmod(prefix, 0o755);
  // A free port may be taken between finding it and nginx binding it: try again with another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = join(prefix, 'nginx.conf');
    await writeFile(conf, nginxConfig(prefix, port, upstreams));
    const child = spawn(binary, ['-e', join(prefix, 'error.log'), '-c', conf, '-p', prefix, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    running.add(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => (running.delete(child), resolve())));
    try {
      await answering(port, child);
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      const log = await readFile(join(prefix, 'error.log'), 'utf8').catch(() => '');
      if (attempt < 3 && /Address already in use/.test(out + log)) continue;
      await rm(prefix, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${(err as Error).message}\n${out}${log}`);
    }
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      pid: child.pid!,
      accessLog: async () =>
        (await readFile(join(prefix, 'access.log'), 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [path = '', status = '', upstream = ''] = line.split(' ');
            return { path, status: Number(status), upstream };
          }),
      stop: async () => {
        await stopProcess(child, exited);
        await rm(prefix, { recursive: true, force: true });
      },
    };
  }
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGQUIT');
  const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(late);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once nginx accepts connections on `port` (GET /nginx-up: any answer will do). */
async function answering(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited (${child.signalCode ?? child.exitCode})`);
    try {
      await fetch(`http://127.0.0.1:${port}/nginx-up`, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not answer on port ${port} within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
