/**
 * Configuration: environment variables → one typed, validated object, read once at start.
 * Every variable and its default is listed in docs/configuration.md.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseTrustProxy, type TrustProxy } from './auth/client-address.js';
import { ConfigError } from './errors.js';

const DAY = 24 * 60 * 60;

const positiveInt = z.coerce.number().int().positive();
const flag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes' || v === 'on');

const adminSpec = z
  .string()
  .regex(/^[^:]{1,64}:.{8,256}$/, 'must be name:password (password at least 8 characters)')
  .transform((v) => {
    const i = v.indexOf(':');
    return { username: v.slice(0, i), password: v.slice(i + 1) };
  });

const origins = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.url().transform((u) => new URL(u).origin)));

/** A comma-separated list of non-empty strings. */
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/** Environment variable → config field, with its schema and default. */
const envSchema = z.object({
  GREENROOM_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  GREENROOM_HOST: z.string().min(1).default('127.0.0.1'),
  GREENROOM_DATA: z.string().min(1).optional(),
  GREENROOM_STORE: z.enum(['lowdb', 'redis']).default('lowdb'),
  GREENROOM_REDIS_URL: list
    .pipe(z.array(z.url().refine((u) => /^rediss?:$/.test(new URL(u).protocol), 'must be redis:// or rediss:// URLs')).min(1))
    .default(['redis://127.0.0.1:6379']),
  GREENROOM_REDIS_CLUSTER: flag.default(false),
  GREENROOM_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 letters, digits or : _ . -').default('gr:'),
  GREENROOM_NODE_LEASE_S: positiveInt.default(10),
  GREENROOM_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  GREENROOM_ALLOWED_ORIGINS: origins.default([]),
  GREENROOM_ADMIN: adminSpec.optional(),
  GREENROOM_ACCESS_TTL_S: positiveInt.default(15 * 60),
  GREENROOM_REFRESH_TTL_S: positiveInt.default(30 * DAY),
  GREENROOM_REFRESH_MAX_TTL_S: positiveInt.default(90 * DAY),
  GREENROOM_REFRESH_GRACE_S: z.coerce.number().int().min(0).default(30),
  GREENROOM_TICKET_TTL_S: positiveInt.default(30),
  GREENROOM_ASK_TIMEOUT_MS: positiveInt.default(5000),
  GREENROOM_MAX_FRAME_BYTES: positiveInt.default(64 * 1024),
  GREENROOM_ASK_RATE: positiveInt.default(100),
  GREENROOM_ASK_BURST: positiveInt.default(200),
  GREENROOM_MAX_CONNECTIONS: positiveInt.default(10_000),
  GREENROOM_MAX_SESSIONS_PER_USER: positiveInt.default(20),
  GREENROOM_MAX_CONNECTIONS_PER_SESSION: positiveInt.default(20),
  GREENROOM_MAX_CONNECTIONS_PER_USER: positiveInt.default(100),
  GREENROOM_MAX_ASKS_IN_FLIGHT: positiveInt.default(16),
  GREENROOM_MAILBOX_CAPACITY: positiveInt.default(5000),
  GREENROOM_MAX_TICKETS_PER_USER: positiveInt.default(20),
  GREENROOM_HEARTBEAT_MS: positiveInt.default(30_000),
  GREENROOM_HEADERS_TIMEOUT_MS: positiveInt.default(10_000),
  GREENROOM_SEND_BUFFER_BYTES: positiveInt.default(1024 * 1024),
  GREENROOM_LOGIN_MAX_FAILURES: positiveInt.default(10),
  GREENROOM_LOGIN_WINDOW_S: positiveInt.default(900),
  GREENROOM_TRUST_PROXY: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseTrustProxy(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .default(false),
  GREENROOM_GUESTS: flag.default(true),
  GREENROOM_GUEST_MAX_PER_WINDOW: positiveInt.default(20),
  GREENROOM_GUEST_WINDOW_S: positiveInt.default(600),
  GREENROOM_METRICS: z.enum(['public', 'admin', 'off']).default('admin'),
  GREENROOM_CLEANUP_INTERVAL_S: positiveInt.default(3600),
  GREENROOM_SESSION_RETENTION_S: z.coerce.number().int().min(0).default(7 * DAY),
  GREENROOM_GUEST_IDLE_S: positiveInt.default(DAY),
  GREENROOM_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Embedding and TLS (checked again, with the overrides, by checkEmbedding).
  GREENROOM_BASE_PATH: z.string().default(''),
  GREENROOM_TLS_CERT: z.string().min(1).optional(),
  GREENROOM_TLS_KEY: z.string().min(1).optional(),
  // Identity from elsewhere (POST /auth/exchange) and built-in passwords.
  GREENROOM_PASSWORDS: flag.default(true),
  GREENROOM_JWKS_URL: z.url().optional(),
  GREENROOM_JWT_ISSUER: list.optional(),
  GREENROOM_JWT_AUDIENCE: z.string().min(1).optional(),
  GREENROOM_JWT_ROLE_CLAIM: z.string().min(1).max(128).optional(),
  GREENROOM_JWT_ROLES: list.default(['user']),
  GREENROOM_JWT_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(30),
  GREENROOM_JWT_TYP: z.string().min(1).max(64).optional(),
  GREENROOM_JWT_MAX_AGE_S: positiveInt.optional(),
  GREENROOM_JWKS_COOLDOWN_S: z.coerce.number().min(0).default(30),
  GREENROOM_EXCHANGE_MAX_FAILURES: positiveInt.default(20),
  GREENROOM_EXCHANGE_WINDOW_S: positiveInt.default(300),
});

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  store: 'lowdb' | 'redis';
  /** The Redis server (or, with `redisCluster`, the cluster's seed nodes). Only with store 'redis'. */
  redisUrls: string[];
  /** Connect to a Redis Cluster (sharded pub/sub, one slot per user's keys). */
  redisCluster: boolean;
  /** Every key this deployment writes starts with this: several deployments (or test runs) can share one Redis. */
  redisPrefix: string;
  /** How long a node's registrations outlive its last contact with Redis (SPEC §8). */
  nodeLeaseS: number;
  /** Signing and sealing secret; when undefined the server generates one and keeps it in the data dir (0600). */
  secret: string | undefined;
  allowedOrigins: string[];
  admin: { username: string; password: string } | undefined;
  accessTtlS: number;
  refreshTtlS: number;
  refreshMaxTtlS: number;
  refreshGraceS: number;
  ticketTtlS: number;
  askTimeoutMs: number;
  maxFrameBytes: number;
  askRate: number;
  askBurst: number;
  maxConnections: number;
  maxSessionsPerUser: number;
  /** Live connections of one session / one user, at most: an upgrade past either gets 429. */
  maxConnectionsPerSession: number;
  maxConnectionsPerUser: number;
  /** Asks of one connection waiting for their answer, at most: past it RATE_LIMITED. */
  maxAsksInFlight: number;
  /** Asks from connections queued in one actor's mailbox, at most: past it UNAVAILABLE. */
  mailboxCapacity: number;
  /** Outstanding (unspent, unexpired) tickets of one user, at most: a new one replaces the oldest. */
  maxTicketsPerUser: number;
  heartbeatMs: number;
  /** HTTP headers (an upgrade's too) must arrive within this; a slower client is dropped. */
  headersTimeoutMs: number;
  sendBufferBytes: number;
  loginMaxFailures: number;
  loginWindowS: number;
  /** The trusted proxies in front of the server (docs/embedding.md, Behind proxies): none, a hop count, or addresses and CIDR ranges. */
  trustProxy: TrustProxy;
  guests: boolean;
  /** Guest sign-ins from one client address per window, at most: past it 429. */
  guestMaxPerWindow: number;
  guestWindowS: number;
  /** Who may read GET /metrics. */
  metrics: 'public' | 'admin' | 'off';
  cleanupIntervalS: number;
  /** How long an ended (revoked or expired) session is kept before cleanup deletes it. */
  sessionRetentionS: number;
  /** A guest user unused this long is deleted by cleanup. */
  guestIdleS: number;
  logLevel: string;
  /** Greenroom's paths (`/ws`, `/auth/*`, `/healthz`, `/readyz`, `/metrics`) sit under this: '' or `/a/b`. */
  basePath: string;
  /** PEM files for the stand-alone server: both set, it serves https and wss. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Built-in passwords (login, UserStore.Create/Update with a password); false leaves only exchange and guests. */
  passwords: boolean;
  /** The identity provider's key set: exchange verifies its tokens against it (see src/auth/identity.ts). */
  jwksUrl: string | undefined;
  /** Accepted `iss` values (required with a JWKS). */
  jwtIssuer: string[] | undefined;
  /** Required `aud` value (required with a JWKS). */
  jwtAudience: string | undefined;
  /** The claim (a dotted path) holding the role; undefined: every exchanged user is a `user`. */
  jwtRoleClaim: string | undefined;
  /** Roles the role claim may grant; any other value is refused. */
  jwtRoles: string[];
  jwtClockToleranceS: number;
  /** The `typ` header an exchanged token must carry (e.g. `at+jwt`: access tokens only, never ID tokens). */
  jwtTyp: string | undefined;
  /** An exchanged token older than this (by its `iat`) is refused. */
  jwtMaxAgeS: number | undefined;
  /** After a JWKS fetch, an unknown `kid` triggers no new fetch for this long. */
  jwksCooldownS: number;
  /** Failed exchanges from one client address per window, at most (counted before verifying): past it 429. */
  exchangeMaxFailures: number;
  exchangeWindowS: number;
}

/** Reads the environment; a bad value is a ConfigError naming the variable (never echoing a secret). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const relevant = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('GREENROOM_') && v !== ''));
  const parsed = envSchema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const config: Config = {
    port: e.GREENROOM_PORT,
    host: e.GREENROOM_HOST,
    // Relative to where the command was typed: npm and pnpm scripts run in a package's folder but set INIT_CWD.
    dataDir: resolve(env.INIT_CWD ?? '.', e.GREENROOM_DATA ?? 'data'),
    store: e.GREENROOM_STORE,
    redisUrls: e.GREENROOM_REDIS_URL,
    redisCluster: e.GREENROOM_REDIS_CLUSTER,
    redisPrefix: e.GREENROOM_REDIS_PREFIX,
    nodeLeaseS: e.GREENROOM_NODE_LEASE_S,
    secret: e.GREENROOM_SECRET,
    allowedOrigins: e.GREENROOM_ALLOWED_ORIGINS,
    admin: e.GREENROOM_ADMIN,
    accessTtlS: e.GREENROOM_ACCESS_TTL_S,
    refreshTtlS: e.GREENROOM_REFRESH_TTL_S,
    refreshMaxTtlS: e.GREENROOM_REFRESH_MAX_TTL_S,
    refreshGraceS: e.GREENROOM_REFRESH_GRACE_S,
    ticketTtlS: e.GREENROOM_TICKET_TTL_S,
    askTimeoutMs: e.GREENROOM_ASK_TIMEOUT_MS,
    maxFrameBytes: e.GREENROOM_MAX_FRAME_BYTES,
    askRate: e.GREENROOM_ASK_RATE,
    askBurst: e.GREENROOM_ASK_BURST,
    maxConnections: e.GREENROOM_MAX_CONNECTIONS,
    maxSessionsPerUser: e.GREENROOM_MAX_SESSIONS_PER_USER,
    maxConnectionsPerSession: e.GREENROOM_MAX_CONNECTIONS_PER_SESSION,
    maxConnectionsPerUser: e.GREENROOM_MAX_CONNECTIONS_PER_USER,
    maxAsksInFlight: e.GREENROOM_MAX_ASKS_IN_FLIGHT,
    mailboxCapacity: e.GREENROOM_MAILBOX_CAPACITY,
    maxTicketsPerUser: e.GREENROOM_MAX_TICKETS_PER_USER,
    heartbeatMs: e.GREENROOM_HEARTBEAT_MS,
    headersTimeoutMs: e.GREENROOM_HEADERS_TIMEOUT_MS,
    sendBufferBytes: e.GREENROOM_SEND_BUFFER_BYTES,
    loginMaxFailures: e.GREENROOM_LOGIN_MAX_FAILURES,
    loginWindowS: e.GREENROOM_LOGIN_WINDOW_S,
    trustProxy: e.GREENROOM_TRUST_PROXY,
    guests: e.GREENROOM_GUESTS,
    guestMaxPerWindow: e.GREENROOM_GUEST_MAX_PER_WINDOW,
    guestWindowS: e.GREENROOM_GUEST_WINDOW_S,
    metrics: e.GREENROOM_METRICS,
    cleanupIntervalS: e.GREENROOM_CLEANUP_INTERVAL_S,
    sessionRetentionS: e.GREENROOM_SESSION_RETENTION_S,
    guestIdleS: e.GREENROOM_GUEST_IDLE_S,
    logLevel: e.GREENROOM_LOG_LEVEL,
    basePath: e.GREENROOM_BASE_PATH,
    tlsCert: e.GREENROOM_TLS_CERT,
    tlsKey: e.GREENROOM_TLS_KEY,
    passwords: e.GREENROOM_PASSWORDS,
    jwksUrl: e.GREENROOM_JWKS_URL,
    jwtIssuer: e.GREENROOM_JWT_ISSUER,
    jwtAudience: e.GREENROOM_JWT_AUDIENCE,
    jwtRoleClaim: e.GREENROOM_JWT_ROLE_CLAIM,
    jwtRoles: e.GREENROOM_JWT_ROLES,
    jwtClockToleranceS: e.GREENROOM_JWT_CLOCK_TOLERANCE_S,
    jwtTyp: e.GREENROOM_JWT_TYP,
    jwtMaxAgeS: e.GREENROOM_JWT_MAX_AGE_S,
    jwksCooldownS: e.GREENROOM_JWKS_COOLDOWN_S,
    exchangeMaxFailures: e.GREENROOM_EXCHANGE_MAX_FAILURES,
    exchangeWindowS: e.GREENROOM_EXCHANGE_WINDOW_S,
  };
  return checkEmbedding({ ...config, ...overrides });
}

/**
 * The base path, normalized ('/' is '', one trailing slash is dropped) and checked: segments of URL-safe characters,
 * no `.` or `..`; and the TLS files, both or neither.
 */
function checkEmbedding(config: Config): Config {
  let basePath = config.basePath ?? '';
  if (basePath === '/') basePath = '';
  else if (basePath.endsWith('/')) basePath = basePath.slice(0, -1);
  if (basePath !== '' && (!/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath) || basePath.split('/').some((s) => s === '.' || s === '..') || basePath.length > 200)) {
    throw new ConfigError('invalid configuration:\n  GREENROOM_BASE_PATH: must be empty or a path like /greenroom (segments of letters, digits and . _ ~ -, no . or ..)');
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new ConfigError('invalid configuration:\n  GREENROOM_TLS_CERT and GREENROOM_TLS_KEY: set both (PEM certificate and key files) or neither');
  }
  // Every node signs and verifies the same tokens: a secret each node generated for itself would not do.
  if (config.store === 'redis' && config.secret === undefined) {
    throw new ConfigError('invalid configuration:\n  GREENROOM_SECRET: required with GREENROOM_STORE=redis (every node must sign with the same secret)');
  }
  return { ...config, basePath };
}
