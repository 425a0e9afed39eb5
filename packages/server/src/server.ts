/**
 * Greenroom.start and Greenroom.attach: wire the store, the actor runtime, the built-in and app actors, the HTTP
 * routes and the WebSocket gateway, and own the stop.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, Server as TlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Close } from '@greenroom/protocol';
import type { AnyActor, MessageRef, PayloadArg } from './actors/define.js';
import { FingerprintStore } from './actors/fingerprint-store.js';
import { allPages } from './actors/paging.js';
import { ActorRegistry } from './actors/registry.js';
import { SessionStore } from './actors/session-store.js';
import { UserStore } from './actors/user-store.js';
import { Authenticator } from './auth/authenticate.js';
import { ProxyTrust } from './auth/client-address.js';
import { AttemptWindows } from './auth/attempt-windows.js';
import { ExchangeService } from './auth/exchange.js';
import { Devices } from './auth/fingerprint.js';
import { createIdentityVerifier, type IdentityOptions } from './auth/identity.js';
import { LoginLimiter } from './auth/login-limiter.js';
import { LoginService } from './auth/login.js';
import { RefreshService } from './auth/refresh.js';
import { deriveKeys, loadSecret } from './auth/secret.js';
import { TicketBook, type Tickets } from './auth/tickets.js';
import { TokenService } from './auth/tokens.js';
import { loadConfig, type Config } from './config.js';
import { ConfigError } from './errors.js';
import type { Lease } from './cluster/lease.js';
import { openSharedAuth } from './cluster/shared-auth.js';
import { attachToServer, type AnyHttpServer } from './gateway/attach.js';
import { actorsRoute } from './gateway/actors-route.js';
import { authRoutes } from './gateway/auth-routes.js';
import { withCors } from './gateway/cors.js';
import { onClientError } from './gateway/client-error.js';
import { Connections } from './gateway/connections.js';
import { createRequestListener, upgradeRequiredRoute, type RouteHandler } from './gateway/http.js';
import { opsRoutes } from './gateway/ops-routes.js';
import { createStaticHandler } from './gateway/static.js';
import { GreenRoom } from './gateway/upgrade.js';
import { AdminSocket } from './gateway/admin-socket.js';
import { createLogger } from './log.js';
import { ActorSystem } from './runtime/actor-system.js';
import type { Locks } from './runtime/keyed-queue.js';
import { joinNodes, type ThisNode } from './cluster/node.js';
import { redisSettings } from './cluster/redis.js';
import { RedisTopicRelay } from './cluster/topic-relay.js';
import { LowdbStore } from './store/lowdb-store.js';
import { openStore, retryUntilReachable, type StartupWork } from './store/open-store.js';
import type { Store } from './store/store.js';

export interface GreenroomOptions {
  /** Settings on top of the environment (tests pass `port: 0`, a temp `dataDir`, a `secret`). */
  config?: Partial<Config>;
  /** The environment to read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** A store to use instead of the one the config names (it is closed on stop). */
  store?: Store;
  /** A directory of static files served at `/` (default: the built dashboard, if present; null: none). */
  staticDir?: string | null;
  /** App actors, registered beside the built-ins. */
  actors?: readonly AnyActor<void>[];
  logger?: Logger;
  /** Verifies the app's identity tokens for POST /auth/exchange (instead of GREENROOM_JWKS_URL). */
  identity?: IdentityOptions;
}

/** The parts of the server, as `Greenroom.start` and `Greenroom.attach` wire them, before it listens. */
export interface Core {
  config: Config;
  log: Logger;
  store: Store;
  system: ActorSystem;
  registry: ActorRegistry;
  tokens: TokenService;
  login: LoginService;
  refresh: RefreshService;
  tickets: Tickets;
  limiter: LoginLimiter;
  /** POST /auth/exchange (identity from elsewhere). */
  exchange: ExchangeService;
  /** The trusted proxies (GREENROOM_TRUST_PROXY): the client address, scheme and host of a request. */
  proxies: ProxyTrust;
  /** Per-key locks: refreshes and SessionStore's writes of one session, and changes of one user, run one at a time. */
  sessionLocks: Locks;
  /** This node among the others (one, with the embedded store). */
  node: ThisNode;
  /** With several nodes (store `redis`): held by the one running the periodic cleanup. */
  cleanupLease: Lease | null;
  /**
   * False while start-up work waits for a store that cannot be reached yet (a Redis that is down), or while this
   * node does not hold its lease among the others: /readyz is 503.
   */
  ready(): boolean;
  /** Stops the core's timers, actors and store. */
  close(): Promise<void>;
}

/** Opens the store and starts the actors, without any network: the server and the offline CLI share it. */
export async function createCore(options: GreenroomOptions & { askRate?: () => number } = {}): Promise<Core> {
  const config = loadConfig(options.env ?? process.env, options.config);
  const log = options.logger ?? createLogger({ level: config.logLevel });
  // Checked before anything opens: a bad exchange setting is a ConfigError at start.
  const identityVerifier = createIdentityVerifier(config, options.identity, log);
  const keys = deriveKeys(await loadSecret(config.dataDir, config.secret));
  const store = options.store ?? (await openStore(config, log));
  const system = new ActorSystem(log);
  const node = await joinNodes(config, log);
  // With several nodes, app actors' topics and keyed instances hold across them (cluster/topic-relay.ts).
  const relay = node.bus ? new RedisTopicRelay(node.bus, redisSettings(config), log) : null;
  const nodes = relay ? { nodes: { relay, locks: node.locks } } : {};
  const registry = new ActorRegistry(system, store, log, { askTimeoutMs: config.askTimeoutMs, mailboxCapacity: config.mailboxCapacity, ...nodes });
  const tokens = new TokenService(keys, config.accessTtlS);
  const sessionLocks = node.locks;
  let startup: StartupWork | null = null;
  try {
    await registry.add(
      SessionStore,
      {
        locks: sessionLocks,
        peers: node.peers,
        newRefreshToken: (sid, gen) => tokens.newRefreshToken(sid, gen),
        hashToken: (t) => tokens.hash(t),
        refreshTtlMs: config.refreshTtlS * 1000,
        refreshMaxTtlMs: config.refreshMaxTtlS * 1000,
        maxSessionsPerUser: config.maxSessionsPerUser,
        maxConnectionsPerSession: config.maxConnectionsPerSession,
        maxConnectionsPerUser: config.maxConnectionsPerUser,
        askRate: options.askRate ?? (() => 0),
      },
    );
    await registry.add(UserStore, { passwords: config.passwords, locks: sessionLocks });
    await registry.add(FingerprintStore, { locks: sessionLocks });
    for (const actor of options.actors ?? []) await registry.add(actor);
    if (config.admin) {
      const admin = config.admin;
      // A store that is down at start (Redis) does not stop the node: the admin is ensured once it is back.
      startup = await retryUntilReachable('ensuring GREENROOM_ADMIN', () => registry.ask(UserStore.Ensure, { ...admin, role: 'admin', onlyIfEmpty: true }), log);
    }
  } catch (err) {
    system.stop();
    await relay?.stop();
    await node.close();
    await store.close();
    throw err;
  }
  // Shared by the nodes through Redis with the Redis store (SPEC §8), else in this process's memory.
  const shared = config.store === 'redis' ? openSharedAuth(config, log) : null;
  const limiter = shared ? new LoginLimiter(shared.login) : new LoginLimiter(config.loginMaxFailures, config.loginWindowS * 1000);
  const tickets = shared?.tickets ?? new TicketBook(config.ticketTtlS * 1000, config.maxTicketsPerUser);
  const refresh = new RefreshService(registry, store, tokens, sessionLocks, keys.seal, {
    refreshTtlMs: config.refreshTtlS * 1000,
    graceMs: config.refreshGraceS * 1000,
  });
  const proxies = new ProxyTrust(config.trustProxy);
  const guestWindows = shared?.guest ?? new AttemptWindows(config.guestMaxPerWindow, config.guestWindowS * 1000);
  const login = new LoginService(registry, tokens, new Devices(keys.fingerprints), limiter, guestWindows, { proxies, guests: config.guests, log });
  const exchangeWindows = shared?.exchange ?? new AttemptWindows(config.exchangeMaxFailures, config.exchangeWindowS * 1000);
  const exchange = new ExchangeService(registry, login, new Devices(keys.fingerprints), exchangeWindows, identityVerifier, log);
  return {
    config,
    log,
    store,
    system,
    registry,
    tokens,
    login,
    refresh,
    tickets,
    limiter,
    exchange,
    proxies,
    sessionLocks,
    node,
    cleanupLease: shared?.cleanupLease ?? null,
    ready: () => (startup?.done() ?? true) && node.healthy(),
    close: async () => {
      startup?.stop();
      refresh.stop();
      tickets.stop();
      limiter.stop();
      guestWindows.stop();
      exchangeWindows.stop();
      shared?.close();
      system.stop();
      // The presence writes of the sockets just closed, before the node leaves.
      await relay?.stop();
      await node.close();
      await store.close();
    },
  };
}

/**
 * Removes ended sessions past retention and stale guests, a batch per ask so the actors keep serving in between.
 * Runs inside the server on a timer (default hourly); one run clears any backlog.
 */
export async function cleanup(core: Core): Promise<{ sessions: number; guests: number }> {
  // One batch per ask: the actors serve others between batches.
  const drain = async (batch: (after: string | null) => Promise<{ deleted: number; next: string | null }>): Promise<number> => {
    const counts = await allPages(async (after) => {
      const res = await batch(after);
      return { items: [res.deleted], next: res.next };
    });
    return counts.reduce((a, b) => a + b, 0);
  };
  const guests = await drain((after) => core.registry.ask(UserStore.CleanupGuests, { idleMs: core.config.guestIdleS * 1000, after }));
  const sessions = await drain((after) => core.registry.ask(SessionStore.Cleanup, { retentionMs: core.config.sessionRetentionS * 1000, after }));
  return { sessions, guests };
}

/**
 * On several nodes: when this node's lease runs out it can no longer see revocations, so it fails closed and closes
 * every socket with 1013 (clients come back after the hint, to a node that can serve them); when its bus
 * subscriber was away it re-checks the sessions it holds.
 */
function watchNode(core: Core, connections: Connections): void {
  const bus = core.node.bus;
  if (!bus) return;
  const retryAfter = Math.max(1, Math.ceil(core.config.nodeLeaseS / 2));
  bus.on('lost', () => {
    for (const c of connections) c.close({ ...Close.tryAgainLater, reason: `retry-after=${retryAfter}` });
  });
  bus.on('resync', () => {
    core.registry.ask(SessionStore.Revalidate, {}).catch((err: unknown) => core.log.warn({ err }, 'could not re-check the sessions held after a bus reconnect'));
  });
}

/** The dashboard's build, shipped inside this package (its build copies it here); the same path from src/ and dist/. */
const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

/** Options of `Greenroom.attach`: those of `start`, and the base path of Greenroom's routes on the app's server. */
export interface AttachOptions extends GreenroomOptions {
  /** Greenroom's paths sit under this (`/ws` becomes `<basePath>/ws`); default GREENROOM_BASE_PATH, else ''. */
  basePath?: string;
}

/** What a server is made with, internally: the server itself, and whether Greenroom listens on and closes it. */
interface Host {
  server: AnyHttpServer;
  owned: boolean;
  /** The answer for other paths while Greenroom is the server's only request listener (default: 404). */
  otherwise?: RouteHandler;
}

/**
 * A server's insides: its core and its live connections. Not in index.ts: apps never need them. The test harness
 * (`@greenroom/server/testing`) hands them on to tests and benchmarks that look inside; their shape may change in
 * any version, unlike the rest of the harness.
 */
export interface Internals extends Core {
  connections: Connections;
}

const internalsOf = new WeakMap<Greenroom, Internals>();

export function internals(server: Greenroom): Internals {
  const found = internalsOf.get(server);
  if (!found) throw new Error('not a server made by Greenroom.start or Greenroom.attach');
  return found;
}

export class Greenroom {
  private stopping: Promise<void> | null = null;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private adminSocket: AdminSocket | null = null;
  private detach: () => void = () => {};

  private constructor(
    private readonly core: Core,
    private readonly http: AnyHttpServer,
    private readonly connections: Connections,
    private readonly greenRoom: GreenRoom,
    /** Whether Greenroom made this server (start) and so listens on and closes it, or was attached to the app's. */
    private readonly owned: boolean,
  ) {
    internalsOf.set(this, { ...core, connections });
  }

  get config(): Config {
    return this.core.config;
  }

  /** The server this Greenroom answers on: its own (start) or the app's (attach). */
  get server(): AnyHttpServer {
    return this.http;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /**
   * Where Greenroom answers: `http(s)://host:port<basePath>` (so `${url}/ws` and `${url}/auth/login`). For an
   * attached server, the address it listens on (an unspecified address as `localhost`).
   */
  get url(): string {
    const scheme = this.http instanceof TlsServer ? 'https' : 'http';
    let host = this.config.host;
    if (!this.owned) {
      const address = this.http.address();
      if (!address || typeof address === 'string') throw new Error('the server Greenroom is attached to is not listening on a TCP port');
      host = address.address === '::' || address.address === '0.0.0.0' ? 'localhost' : address.address;
    }
    const hostPart = host.includes(':') ? `[${host}]` : host;
    return `${scheme}://${hostPart}:${this.port}${this.config.basePath}`;
  }

  /** Adds an app actor: one line per actor. */
  register(actor: AnyActor<void>): Promise<void> {
    return this.core.registry.add(actor);
  }

  /** Asks an actor as the server itself (no role checks): `greenroom.ask(UserStore.Get, { uid })`. */
  ask<P, R>(ref: MessageRef<P, R>, ...payload: PayloadArg<NoInfer<P>>): Promise<R> {
    return this.core.registry.ask(ref, ...payload);
  }

  /** Runs the periodic cleanup now (it also runs every GREENROOM_CLEANUP_INTERVAL_S). */
  cleanup(): Promise<{ sessions: number; guests: number }> {
    return cleanup(this.core);
  }

  /**
   * Adds Greenroom to the app's `http.Server` or `https.Server` (mirrors Socket.IO's `new Server(httpServer)`): the
   * WebSocket gateway at `<basePath>/ws` and the routes `<basePath>/auth/*`, `/actors`, `/healthz`, `/readyz`, `/metrics`
   * (under the base path). Requests and upgrades for any other path are left to the app's own listeners, added before or
   * after this (see gateway/attach.ts). The app listens on and closes its server; `stop()` stops Greenroom's part
   * and removes it from the server, which keeps serving the app. No dashboard is served (`staticDir` is ignored).
   */
  static attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): Promise<Greenroom> {
    const { basePath, ...rest } = options;
    const config = basePath === undefined ? rest.config : { ...rest.config, basePath };
    return Greenroom.open({ ...rest, config }, () => ({ server, owned: false }));
  }

  /**
   * The stand-alone server: makes its own http server (https with GREENROOM_TLS_CERT / GREENROOM_TLS_KEY), attaches
   * to it, serves the dashboard on the other paths, and listens on GREENROOM_HOST:GREENROOM_PORT.
   */
  static start(options: GreenroomOptions = {}): Promise<Greenroom> {
    return Greenroom.open(options, (config) => {
      const staticDir = options.staticDir === undefined ? DASHBOARD_DIR : options.staticDir;
      const otherwise = staticDir && existsSync(staticDir) ? createStaticHandler(staticDir) : undefined;
      const timeouts = { headersTimeout: config.headersTimeoutMs, requestTimeout: Math.max(30_000, config.headersTimeoutMs), connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs) };
      const http = config.tlsCert && config.tlsKey ? createHttpsServer({ ...timeouts, ...readTls(config.tlsCert, config.tlsKey) }) : createServer(timeouts);
      // An idle pre-opened socket is closed without a word; a late request gets 408, never a stale 400.
      http.on('clientError', onClientError);
      return { server: http, owned: true, ...(otherwise ? { otherwise } : {}) };
    });
  }

  /** The one way both forms are built: core, connections, green room and routes, put on the server `host` makes. */
  private static async open(options: GreenroomOptions, host: (config: Config) => Host): Promise<Greenroom> {
    // SessionStore's Stats reads the ask rate, but the connections are made once the core has read the config.
    let counters: Connections | undefined;
    const core = await createCore({ ...options, askRate: () => counters?.askRate() ?? 0 });
    const { config, log, registry, store, tokens } = core;
    const auth = new Authenticator(tokens, core.tickets, config.allowedOrigins, core.proxies);
    const connections = (counters = new Connections(config));
    const greenRoom = new GreenRoom(registry, auth, connections, config, log);
    watchNode(core, connections);
    const closeGateway = async (timeoutMs?: number) => {
      await connections.closeAll(timeoutMs);
      greenRoom.close();
    };

    const unprefixed = [
      ...opsRoutes({ metrics: config.metrics, registry, auth, store, connections, ready: core.ready }),
      actorsRoute({ registry, auth }),
      ...authRoutes({ registry, auth, login: core.login, refresh: core.refresh, tickets: core.tickets, tokens, log, exchange: core.exchange, passwords: config.passwords, basePath: config.basePath }),
    ];
    const wsPath = `${config.basePath}/ws`;
    // CORS for the allowed origins (gateway/cors.ts): a page of another allowed origin calls these routes too.
    const routes = withCors(auth, [
      ...unprefixed.map((route) => ({ ...route, path: config.basePath + route.path })),
      // An upgrade goes to the gateway; a plain request for /ws is told to upgrade (not served by the dashboard).
      upgradeRequiredRoute(wsPath),
    ]);

    let made: Host;
    try {
      made = host(config);
    } catch (err) {
      await closeGateway(0);
      await core.close();
      throw err;
    }
    const { server: http, owned } = made;
    const paths = new Set(routes.map((r) => r.path));
    const ours = createRequestListener(routes, log);
    const everything = createRequestListener(routes, log, made.otherwise);
    const detach = attachToServer(http, {
      owns: (path) => paths.has(path),
      request: (req, res) => {
        connections.trackRequest(res);
        void ours(req, res);
      },
      otherwise: (req, res) => void everything(req, res),
      ownsUpgrade: (path) => path === wsPath,
      upgrade: (req, socket, head) => void greenRoom.handleUpgrade(req, socket, head),
    });
    if (owned) {
      try {
        await new Promise<void>((resolve, reject) => {
          http.once('error', reject);
          http.listen(config.port, config.host, () => {
            http.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        detach();
        await closeGateway(0);
        await core.close();
        throw err;
      }
    }
    const server = new Greenroom(core, http, connections, greenRoom, owned);
    server.detach = detach;
    // Only a store opened here on the data dir holds its lock (then a socket file left there is stale).
    const dataDirLocked = options.store === undefined && store instanceof LowdbStore;
    server.adminSocket = await AdminSocket.open(config.dataDir, { registry, log, maxLineBytes: config.maxFrameBytes, sendBufferBytes: config.sendBufferBytes, dataDirLocked });
    server.cleanupTimer = setInterval(() => {
      // With several nodes, one runs it at a time: the others find the lease held and skip this round.
      const lease = core.cleanupLease;
      (lease ? lease.run(() => server.cleanup()) : server.cleanup()).then(
        (deleted) => (deleted ? log.info({ deleted }, 'cleanup done') : log.debug('cleanup left to the node holding its lease')),
        (err) => log.error({ err }, 'cleanup failed'),
      );
    }, config.cleanupIntervalS * 1000).unref();
    if (owned) log.info({ url: server.url, store: config.store, dataDir: config.dataDir, ...(core.node.bus ? { node: core.node.bus.nodeId } : {}) }, 'greenroom listening');
    else log.info({ basePath: config.basePath, store: config.store, dataDir: config.dataDir }, 'greenroom attached');
    return server;
  }

  /**
   * Graceful stop, in order: stop accepting connections and asks; answer the asks in flight (at most the ask
   * timeout); close every socket with 1001 `shutdown`; remove Greenroom from the server (its own server: closed;
   * the app's: left running, serving the app); flush and close the store.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.cleanupTimer);
      this.connections.stopAccepting();
      const adminClosed = this.adminSocket?.close(this.config.askTimeoutMs);
      const closed = this.owned ? new Promise<void>((resolve) => this.http.close(() => resolve())) : undefined;
      if (this.owned) this.http.closeIdleConnections();
      await this.connections.drain(this.config.askTimeoutMs);
      await this.connections.closeAll();
      this.greenRoom.close();
      if (this.owned) {
        this.http.closeAllConnections();
        await closed;
      }
      this.detach();
      await adminClosed;
      await this.core.close();
      this.core.log.info('greenroom stopped');
    })();
    return this.stopping;
  }
}

/** The stand-alone server's certificate and key; a file that cannot be read is a ConfigError naming its variable. */
function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, variable: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`invalid configuration:\n  ${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const tls = { cert: read(certFile, 'GREENROOM_TLS_CERT'), key: read(keyFile, 'GREENROOM_TLS_KEY') };
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  GREENROOM_TLS_CERT / GREENROOM_TLS_KEY: not a usable PEM certificate and key (${(err as Error).message})`);
  }
  return tls;
}
