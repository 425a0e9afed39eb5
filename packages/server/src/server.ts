/**
 * createGreenroom(): wires the store, the actor runtime, the built-in and app actors, the HTTP routes and the
 * WebSocket gateway, and owns start and stop.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ErrorCode } from '@greenroom/protocol';
import type { ActorDefinition } from './actors/define.js';
import { createFingerprintStore } from './actors/fingerprint-store.js';
import { ActorRegistry } from './actors/registry.js';
import { createSessionStore, SESSION_STORE } from './actors/session-store.js';
import { createUserStore, USER_STORE } from './actors/user-store.js';
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
import { TicketBook } from './auth/tickets.js';
import { TokenService } from './auth/tokens.js';
import { loadConfig, type Config } from './config.js';
import { GreenroomError } from './errors.js';
import { authRoutes } from './gateway/auth-routes.js';
import { withCors } from './gateway/cors.js';
import { onClientError } from './gateway/client-error.js';
import { createRequestListener, sendJson, upgradeRequiredRoute, type Route } from './gateway/http.js';
import { createStaticHandler } from './gateway/static.js';
import { Gateway } from './gateway/upgrade.js';
import { AdminSocket } from './gateway/admin-socket.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { ActorSystem } from './runtime/actor-system.js';
import { KeyedQueue } from './runtime/keyed-queue.js';
import { LowdbStore } from './store/lowdb-store.js';
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
  actors?: ActorDefinition<any>[];
  logger?: Logger;
  /** Verifies the app's identity tokens for POST /auth/exchange (instead of GREENROOM_JWKS_URL). */
  identity?: IdentityOptions;
}

/** The parts of the server, as wired by `createGreenroom`, before it listens. */
export interface Core {
  config: Config;
  log: Logger;
  store: Store;
  system: ActorSystem;
  registry: ActorRegistry;
  tokens: TokenService;
  login: LoginService;
  refresh: RefreshService;
  tickets: TicketBook;
  limiter: LoginLimiter;
  /** The trusted proxies (GREENROOM_TRUST_PROXY): the client address, scheme and host of a request. */
  proxies: ProxyTrust;
  /** POST /auth/exchange (identity from elsewhere). */
  exchange: ExchangeService;
  /** Per-session queues: refreshes and SessionStore's writes of one session run one at a time. */
  sessionLocks: KeyedQueue;
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
  const store = options.store ?? (await LowdbStore.open(config.dataDir));
  const system = new ActorSystem(log);
  const registry = new ActorRegistry(system, store, log, { askTimeoutMs: config.askTimeoutMs, mailboxCapacity: config.mailboxCapacity });
  const tokens = new TokenService(keys, config.accessTtlS);
  const sessionLocks = new KeyedQueue();
  try {
    await registry.add(
      createSessionStore({
        locks: sessionLocks,
        newRefreshToken: (sid, gen) => tokens.newRefreshToken(sid, gen),
        hashToken: (t) => tokens.hash(t),
        refreshTtlMs: config.refreshTtlS * 1000,
        refreshMaxTtlMs: config.refreshMaxTtlS * 1000,
        maxSessionsPerUser: config.maxSessionsPerUser,
        maxConnectionsPerSession: config.maxConnectionsPerSession,
        maxConnectionsPerUser: config.maxConnectionsPerUser,
        askRate: options.askRate ?? (() => 0),
      }),
    );
    await registry.add(createUserStore({ passwords: config.passwords }));
    await registry.add(createFingerprintStore());
    for (const actor of options.actors ?? []) await registry.add(actor);
    if (config.admin) {
      await registry.ask(USER_STORE, 'Ensure', { ...config.admin, role: 'admin', onlyIfEmpty: true });
    }
  } catch (err) {
    system.stop();
    await store.close();
    throw err;
  }
  const limiter = new LoginLimiter(config.loginMaxFailures, config.loginWindowS * 1000);
  const tickets = new TicketBook(config.ticketTtlS * 1000, config.maxTicketsPerUser);
  const refresh = new RefreshService(registry, store, tokens, sessionLocks, keys.seal, {
    refreshTtlMs: config.refreshTtlS * 1000,
    graceMs: config.refreshGraceS * 1000,
  });
  const proxies = new ProxyTrust(config.trustProxy);
  const guestWindows = new AttemptWindows(config.guestMaxPerWindow, config.guestWindowS * 1000);
  const login = new LoginService(registry, tokens, new Devices(keys.fingerprints), limiter, guestWindows, { proxies, guests: config.guests, log });
  const exchangeWindows = new AttemptWindows(config.exchangeMaxFailures, config.exchangeWindowS * 1000);
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
    close: async () => {
      refresh.stop();
      tickets.stop();
      limiter.stop();
      guestWindows.stop();
      exchangeWindows.stop();
      system.stop();
      await store.close();
    },
  };
}

/**
 * Removes ended sessions past retention and stale guests, a batch per ask so the actors keep serving in between.
 * Runs inside the server on a timer (default hourly); one run clears any backlog.
 */
export async function cleanup(core: Core): Promise<{ sessions: number; guests: number }> {
  const drain = async (actor: string, type: string, payload: object): Promise<number> => {
    let total = 0;
    let after: string | null = null;
    do {
      const page: { deleted: number; next: string | null } = await core.registry.ask(actor, type, { ...payload, after });
      total += page.deleted;
      after = page.next;
    } while (after !== null);
    return total;
  };
  const guests = await drain(USER_STORE, 'CleanupGuests', { idleMs: core.config.guestIdleS * 1000 });
  const sessions = await drain(SESSION_STORE, 'Cleanup', { retentionMs: core.config.sessionRetentionS * 1000 });
  return { sessions, guests };
}

/** The dashboard's build, shipped inside this package (its build copies it here); the same path from src/ and dist/. */
const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

export class Greenroom {
  private stopping: Promise<void> | null = null;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private adminSocket: AdminSocket | null = null;

  private constructor(
    readonly core: Core,
    private readonly http: Server,
    readonly gateway: Gateway,
  ) {}

  get config(): Config {
    return this.core.config;
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  /** `http://host:port` of the running server. */
  get url(): string {
    const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `http://${host}:${this.port}`;
  }

  /** Adds an app actor: one line per actor. */
  register(actor: ActorDefinition<any>): Promise<void> {
    return this.core.registry.add(actor);
  }

  /** Asks an actor as the server itself (no role checks). */
  ask<R = unknown>(actor: string, type: string, payload: unknown = {}): Promise<R> {
    return this.core.registry.ask<R>(actor, type, payload);
  }

  /** Runs the periodic cleanup now (it also runs every GREENROOM_CLEANUP_INTERVAL_S). */
  cleanup(): Promise<{ sessions: number; guests: number }> {
    return cleanup(this.core);
  }

  static async start(options: GreenroomOptions = {}): Promise<Greenroom> {
    let gateway: Gateway | undefined;
    const core = await createCore({ ...options, askRate: () => gateway?.askRate() ?? 0 });
    const { config, log, registry, store, tokens } = core;
    const auth = new Authenticator(tokens, core.tickets, config.allowedOrigins, core.proxies);
    gateway = new Gateway(registry, auth, config, log);
    const gw = gateway;
    const metrics = createMetrics({
      connections: () => gw.connections.size,
      asks: () => gw.asks,
      queued: () => registry.names().map((name) => [name, registry.queued(name)]),
    });

    // CORS for the allowed origins (gateway/cors.ts): a page of another allowed origin calls these routes too.
    const routes: Route[] = withCors(auth, [
      { method: 'GET', path: '/healthz', handle: async (_req, res) => sendJson(res, 200, { status: 'ok' }) },
      {
        method: 'GET',
        path: '/readyz',
        handle: async (_req, res) => {
          // Not ready while stopping, so clients that probe before reconnecting wait for the next server.
          if (!gw.isAccepting) throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the server is shutting down', { retryAfterSeconds: 1 });
          try {
            await store.ping();
          } catch {
            throw new GreenroomError(ErrorCode.UNAVAILABLE, 'the store is not reachable');
          }
          sendJson(res, 200, { status: 'ready' });
        },
      },
      ...(config.metrics === 'off'
        ? []
        : [
            {
              method: 'GET' as const,
              path: '/metrics',
              handle: async (req: IncomingMessage, res: ServerResponse) => {
                // 'admin': a live admin session, by any strategy (a scraper sends a bearer token).
                if (config.metrics === 'admin') {
                  const identity = await auth.authenticate(req);
                  const { role } = await registry.ask<{ role: string }>(SESSION_STORE, 'Check', { uid: identity.uid, sid: identity.sid });
                  if (role !== 'admin') throw new GreenroomError(ErrorCode.FORBIDDEN, 'metrics are for admins');
                }
                const text = await metrics.metrics();
                res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
                res.end(text);
              },
            },
          ]),
      ...authRoutes({ registry, auth, login: core.login, refresh: core.refresh, tickets: core.tickets, tokens, log, exchange: core.exchange, passwords: config.passwords }),
      // An upgrade goes to the gateway; a plain request for /ws is told to upgrade (not served by the dashboard).
      upgradeRequiredRoute('/ws'),
    ]);

    const staticDir = options.staticDir === undefined ? DASHBOARD_DIR : options.staticDir;
    const fallback = staticDir && existsSync(staticDir) ? createStaticHandler(staticDir) : undefined;
    const http = createServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: Math.max(30_000, config.headersTimeoutMs), connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs) }, createRequestListener(routes, log, fallback));
    http.on('upgrade', (req, socket, head) => void gw.handleUpgrade(req, socket, head));
    // An idle pre-opened socket is closed without a word; a late request gets 408, never a stale 400.
    http.on('clientError', onClientError);
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await gw.closeAll(0);
      await core.close();
      throw err;
    }
    const server = new Greenroom(core, http, gw);
    // Only a store opened here on the data dir holds its lock (then a socket file left there is stale).
    const dataDirLocked = options.store === undefined && store instanceof LowdbStore;
    server.adminSocket = await AdminSocket.open(config.dataDir, { registry, log, maxLineBytes: config.maxFrameBytes, sendBufferBytes: config.sendBufferBytes, dataDirLocked });
    server.cleanupTimer = setInterval(() => {
      server.cleanup().then(
        (deleted) => log.info({ deleted }, 'cleanup done'),
        (err) => log.error({ err }, 'cleanup failed'),
      );
    }, config.cleanupIntervalS * 1000).unref();
    log.info({ url: server.url, store: config.store, dataDir: config.dataDir }, 'greenroom listening');
    return server;
  }

  /**
   * Graceful stop, in order: stop accepting connections and asks; answer the asks in flight (at most the ask
   * timeout); close every socket with 1001 `shutdown`; flush and close the store.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.cleanupTimer);
      this.gateway.stopAccepting();
      const adminClosed = this.adminSocket?.close(this.config.askTimeoutMs);
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeIdleConnections();
      await this.gateway.drain(this.config.askTimeoutMs);
      await this.gateway.closeAll();
      this.http.closeAllConnections();
      await closed;
      await adminClosed;
      await this.core.close();
      this.core.log.info('greenroom stopped');
    })();
    return this.stopping;
  }
}

export function createGreenroom(options: GreenroomOptions = {}): Promise<Greenroom> {
  return Greenroom.start(options);
}
