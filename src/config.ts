import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * Configuration comes only from the environment, is validated once at start-up and is frozen.
 * Every problem is reported with the variable's name and what it accepts; start-up stops on any.
 */

const bool = (name: string) =>
  z
    .enum(['on', 'off', 'true', 'false', '1', '0', 'yes', 'no'], {
      error: `${name} must be one of on|off|true|false|1|0|yes|no`,
    })
    .transform((v) => v === 'on' || v === 'true' || v === '1' || v === 'yes');

const int = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${name} must be a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `${name} must be a whole number from ${min} to ${max}` })
        .max(max, { error: `${name} must be a whole number from ${min} to ${max}` }),
    );

const httpUrl = (name: string) =>
  z.string().refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '';
      } catch {
        return false;
      }
    },
    { error: `${name} must be an absolute http(s) URL without query or fragment, e.g. https://api.anthropic.com` },
  );

const keyList = (name: string) =>
  z
    .string()
    .transform((v) => v.split(',').map((k) => k.trim()).filter((k) => k.length > 0))
    .refine((keys) => keys.length > 0, { error: `${name} must list at least one key (comma-separated)` })
    .refine((keys) => keys.every((k) => k.length >= 16), { error: `${name}: every key must be at least 16 characters` });

const basePath = (name: string) =>
  z.string().refine((v) => v === '' || /^\/[A-Za-z0-9._~\-/]*[^/]$/.test(v), {
    error: `${name} must be empty or a path like /anthropic (leading slash, no trailing slash)`,
  });

/** Host:port pairs or redis(s):// URLs, normalised to URLs. */
const redisNodes = (name: string) =>
  z
    .string()
    .transform((v) => v.split(',').map((n) => n.trim()).filter((n) => n.length > 0).map((n) => (/^rediss?:\/\//.test(n) ? n : `redis://${n}`)))
    .refine((nodes) => nodes.length > 0 && nodes.every((n) => { try { const u = new URL(n); return u.hostname !== '' && u.port !== ''; } catch { return false; } }), {
      error: `${name} must be a comma-separated list of host:port (or redis://host:port, rediss://user:password@host:port)`,
    });

/** A readable PEM file; its content. */
const pemFile = (name: string) =>
  z.string().transform((path, ctx) => {
    try {
      const pem = readFileSync(path, 'utf8');
      if (pem.includes('-----BEGIN')) return pem;
    } catch {
      // reported below
    }
    ctx.addIssue({ code: 'custom', message: `${name} must name a readable PEM file` });
    return z.NEVER;
  });

const MS_DAY = 86_400_000;

const PRICE_FIELDS = ['input', 'output', 'cache_creation', 'cache_read'] as const;

const pricing = (name: string) =>
  z.string().transform((v, ctx) => {
    const problem = `${name} must be a JSON object {"<model or family>": {"input": n, "output": n, "cache_creation": n, "cache_read": n}} in USD per million tokens`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const out: Record<string, Record<(typeof PRICE_FIELDS)[number], number>> = {};
    for (const [model, price] of Object.entries(parsed as Record<string, unknown>)) {
      const p = price as Record<string, unknown> | null;
      if (typeof p !== 'object' || p === null || !PRICE_FIELDS.every((f) => typeof p[f] === 'number' && p[f] >= 0)) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      out[model] = { input: p.input as number, output: p.output as number, cache_creation: p.cache_creation as number, cache_read: p.cache_read as number };
    }
    return out;
  });

const nameList = (name: string) =>
  z
    .string()
    .transform((v) => v.split(',').map((k) => k.trim().toLowerCase()).filter((k) => k.length > 0))
    .refine((names) => names.length > 0 && names.every((n) => /^[a-z0-9_.:-]{1,64}$/.test(n)), {
      error: `${name} must be a comma-separated list of names made of a-z 0-9 _ . : - (at most 64 characters each)`,
    });

/** Defaults are the documented ones (README "Configuration"); keep both in step. */
const schema = z.object({
  PORT: int('PORT', 0, 65535).default(8080),
  HOST: z.string().min(1, { error: 'HOST must not be empty' }).default('0.0.0.0'),
  UPSTREAM_URL: httpUrl('UPSTREAM_URL').default('https://api.anthropic.com'),
  PUBLIC_URL: httpUrl('PUBLIC_URL').optional(),
  BASE_PATH: basePath('BASE_PATH').default(''),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'LOG_LEVEL must be one of fatal|error|warn|info|debug|trace|silent',
    })
    .default('info'),
  UPSTREAM_CONNECTIONS: int('UPSTREAM_CONNECTIONS', 1, 10_000).default(128),
  UPSTREAM_CONNECT_TIMEOUT_MS: int('UPSTREAM_CONNECT_TIMEOUT_MS', 1, MS_DAY).default(10_000),
  UPSTREAM_HEADERS_TIMEOUT_MS: int('UPSTREAM_HEADERS_TIMEOUT_MS', 1, MS_DAY).default(600_000),
  UPSTREAM_BODY_TIMEOUT_MS: int('UPSTREAM_BODY_TIMEOUT_MS', 1, MS_DAY).default(300_000),
  UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: int('UPSTREAM_KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY).default(60_000),
  MAX_BODY_BYTES: int('MAX_BODY_BYTES', 1, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  KEEP_ALIVE_TIMEOUT_MS: int('KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY).default(65_000),
  SHUTDOWN_DELAY_MS: int('SHUTDOWN_DELAY_MS', 0, MS_DAY).default(0),
  SHUTDOWN_GRACE_MS: int('SHUTDOWN_GRACE_MS', 0, MS_DAY).default(30_000),
  GATEWAY_API_KEYS: keyList('GATEWAY_API_KEYS').optional(),
  ANTHROPIC_API_KEY: z.string().min(1, { error: 'ANTHROPIC_API_KEY must not be empty when set' }).optional(),
  ALLOW_OPEN_GATEWAY: bool('ALLOW_OPEN_GATEWAY').default(false),
  COALESCE: bool('COALESCE').default(true),
  COALESCE_MAX_REPLAY_BYTES: int('COALESCE_MAX_REPLAY_BYTES', 0, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  COALESCE_SUBSCRIBER_BUFFER_BYTES: int('COALESCE_SUBSCRIBER_BUFFER_BYTES', 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  COALESCE_LINGER_MS: int('COALESCE_LINGER_MS', 0, 60_000).default(0),
  MODES: nameList('MODES').optional(),
  MAX_MODES: int('MAX_MODES', 1, 1000).default(20),
  MAX_MODELS: int('MAX_MODELS', 1, 1000).default(50),
  PRICING_JSON: pricing('PRICING_JSON').optional(),
  CACHE: bool('CACHE').default(false),
  CACHE_TTL_MS: int('CACHE_TTL_MS', 1, 30 * MS_DAY).default(300_000),
  CACHE_MAX_ENTRIES: int('CACHE_MAX_ENTRIES', 1, 10_000_000).default(1_000),
  CACHE_MAX_BYTES: int('CACHE_MAX_BYTES', 1024, 64 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  REDIS_URL: z
    .string()
    .refine((v) => /^rediss?:\/\/.+/.test(v), { error: 'REDIS_URL must be a redis:// or rediss:// URL' })
    .optional(),
  REDIS_COMMAND_TIMEOUT_MS: int('REDIS_COMMAND_TIMEOUT_MS', 1, 60_000).default(250),
  REDIS_RETRY_MS: int('REDIS_RETRY_MS', 1, 600_000).default(5_000),
  REDIS_CLAIM_TTL_MS: int('REDIS_CLAIM_TTL_MS', 100, 600_000).default(5_000),
  REDIS_CLUSTER_NODES: redisNodes('REDIS_CLUSTER_NODES').optional().describe('Redis Cluster seed nodes, comma-separated host:port or redis(s):// URLs (credentials and TLS of the first apply to all)'),
  REDIS_TLS_CA_FILE: pemFile('REDIS_TLS_CA_FILE').optional().describe('PEM file of the CA that signed the Redis server certificate (rediss://), when it is not a public CA'),
  REDIS_STREAM_MAX_BYTES: int('REDIS_STREAM_MAX_BYTES', 1024, 1024 * 1024 * 1024).default(64 * 1024 * 1024).describe('Body bytes a leader relays to other instances at most; past it remote followers get an explicit error'),
  REDIS_CACHE_MAX_ENTRY_BYTES: int('REDIS_CACHE_MAX_ENTRY_BYTES', 0, 512 * 1024 * 1024).default(1024 * 1024).describe('Largest answer the shared cache writes to Redis; larger ones stay in the local cache only'),
  WORKERS: int('WORKERS', 1, 256).default(1),
  MAX_CONCURRENT_REQUESTS: int('MAX_CONCURRENT_REQUESTS', 1, 1_000_000).default(10_000),
  BREAKER: bool('BREAKER').default(true),
  BREAKER_ERROR_THRESHOLD: int('BREAKER_ERROR_THRESHOLD', 1, 100).default(50),
  BREAKER_VOLUME_THRESHOLD: int('BREAKER_VOLUME_THRESHOLD', 1, 1_000_000).default(10),
  BREAKER_WINDOW_MS: int('BREAKER_WINDOW_MS', 100, MS_DAY).default(10_000),
  BREAKER_RESET_TIMEOUT_MS: int('BREAKER_RESET_TIMEOUT_MS', 1, MS_DAY).default(30_000),
  RATE_LIMIT_RPM: int('RATE_LIMIT_RPM', 0, 10_000_000).default(0),
  UPSTREAM_RETRIES: int('UPSTREAM_RETRIES', 0, 10).default(2),
  RETRY_ON_OVERLOADED: bool('RETRY_ON_OVERLOADED').default(false),
  RETRY_BASE_DELAY_MS: int('RETRY_BASE_DELAY_MS', 0, 60_000).default(250),
  RETRY_MAX_DELAY_MS: int('RETRY_MAX_DELAY_MS', 0, 600_000).default(8_000),
  RETRY_BUDGET_PERCENT: int('RETRY_BUDGET_PERCENT', 0, 100).default(10),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Upstream origin, e.g. https://api.anthropic.com (no path). */
  readonly upstreamOrigin: string;
  /** Path prefix of UPSTREAM_URL ('' or '/something'), prepended to every forwarded path. */
  readonly upstreamPathPrefix: string;
  /** UPSTREAM_URL as given, without a trailing slash. */
  readonly upstreamBaseUrl: string;
  readonly publicUrl: string | undefined;
  readonly basePath: string;
  readonly logLevel: string;
  readonly upstreamConnections: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyTimeoutMs: number;
  readonly upstreamKeepAliveTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly shutdownDelayMs: number;
  readonly shutdownGraceMs: number;
  readonly gatewayApiKeys: readonly string[] | undefined;
  readonly anthropicApiKey: string | undefined;
  readonly allowOpenGateway: boolean;
  readonly coalesce: boolean;
  readonly coalesceMaxReplayBytes: number;
  readonly coalesceSubscriberBufferBytes: number;
  readonly coalesceLingerMs: number;
  /** Allowed x-gateway-mode values (others count as `other`); undefined = first MAX_MODES seen. */
  readonly modes: ReadonlySet<string> | undefined;
  readonly maxModes: number;
  readonly maxModels: number;
  readonly pricing: Readonly<Record<string, { input: number; output: number; cache_creation: number; cache_read: number }>>;
  readonly redis:
    | {
        readonly url: string;
        readonly commandTimeoutMs: number;
        readonly retryMs: number;
        readonly claimTtlMs: number;
        /** Cluster seed nodes (URLs); undefined = a single server at `url`. */
        readonly clusterNodes: readonly string[] | undefined;
        readonly tlsCa: string | undefined;
        readonly streamMaxBytes: number;
        readonly cacheMaxEntryBytes: number;
      }
    | undefined;
  readonly workers: number;
  /** Requests in progress at most; past it the API answers 503 at once (bounds every per-request structure). */
  readonly maxConcurrentRequests: number;
  readonly cache: {
    readonly enabled: boolean;
    readonly ttlMs: number;
    readonly maxEntries: number;
    readonly maxBytes: number;
  };
  readonly breaker: {
    readonly enabled: boolean;
    readonly errorThresholdPercent: number;
    readonly volumeThreshold: number;
    readonly windowMs: number;
    readonly resetTimeoutMs: number;
  };
  readonly rateLimitRpm: number;
  readonly retry: {
    readonly maxRetries: number;
    readonly onOverloaded: boolean;
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
    readonly budgetPercent: number;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Empty strings count as unset, as shells and compose files produce them for "no value". */
function presentOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') out[key] = value.trim();
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(presentOnly(env));
  if (!parsed.success) {
    // Messages name the variable; values are never echoed (they may be secrets).
    throw new ConfigError(parsed.error.issues.map((i) => i.message));
  }
  const v = parsed.data;
  const problems: string[] = [];
  if (v.ANTHROPIC_API_KEY !== undefined && v.GATEWAY_API_KEYS === undefined && !v.ALLOW_OPEN_GATEWAY) {
    problems.push(
      'ANTHROPIC_API_KEY is set but GATEWAY_API_KEYS is not: anyone who reaches the gateway would spend your key. ' +
        'Set GATEWAY_API_KEYS, or ALLOW_OPEN_GATEWAY=true to run open on purpose',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const upstream = new URL(v.UPSTREAM_URL);
  const upstreamPathPrefix = upstream.pathname.replace(/\/+$/, '');
  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    upstreamOrigin: upstream.origin,
    upstreamPathPrefix,
    upstreamBaseUrl: upstream.origin + upstreamPathPrefix,
    publicUrl: v.PUBLIC_URL?.replace(/\/+$/, ''),
    basePath: v.BASE_PATH,
    logLevel: v.LOG_LEVEL,
    upstreamConnections: v.UPSTREAM_CONNECTIONS,
    upstreamConnectTimeoutMs: v.UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamHeadersTimeoutMs: v.UPSTREAM_HEADERS_TIMEOUT_MS,
    upstreamBodyTimeoutMs: v.UPSTREAM_BODY_TIMEOUT_MS,
    upstreamKeepAliveTimeoutMs: v.UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    keepAliveTimeoutMs: v.KEEP_ALIVE_TIMEOUT_MS,
    shutdownDelayMs: v.SHUTDOWN_DELAY_MS,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    gatewayApiKeys: v.GATEWAY_API_KEYS ? Object.freeze([...v.GATEWAY_API_KEYS]) : undefined,
    anthropicApiKey: v.ANTHROPIC_API_KEY,
    allowOpenGateway: v.ALLOW_OPEN_GATEWAY,
    coalesce: v.COALESCE,
    coalesceMaxReplayBytes: v.COALESCE_MAX_REPLAY_BYTES,
    coalesceSubscriberBufferBytes: v.COALESCE_SUBSCRIBER_BUFFER_BYTES,
    coalesceLingerMs: v.COALESCE_LINGER_MS,
    modes: v.MODES ? new Set([...v.MODES, 'default']) : undefined,
    maxModes: v.MAX_MODES,
    maxModels: v.MAX_MODELS,
    pricing: v.PRICING_JSON ?? {},
    redis:
      v.REDIS_URL === undefined && v.REDIS_CLUSTER_NODES === undefined
        ? undefined
        : Object.freeze({
            url: v.REDIS_URL ?? (v.REDIS_CLUSTER_NODES?.[0] as string),
            commandTimeoutMs: v.REDIS_COMMAND_TIMEOUT_MS,
            retryMs: v.REDIS_RETRY_MS,
            claimTtlMs: v.REDIS_CLAIM_TTL_MS,
            clusterNodes: v.REDIS_CLUSTER_NODES ? Object.freeze([...v.REDIS_CLUSTER_NODES]) : undefined,
            tlsCa: v.REDIS_TLS_CA_FILE,
            streamMaxBytes: v.REDIS_STREAM_MAX_BYTES,
            cacheMaxEntryBytes: v.REDIS_CACHE_MAX_ENTRY_BYTES,
          }),
    workers: v.WORKERS,
    maxConcurrentRequests: v.MAX_CONCURRENT_REQUESTS,
    cache: Object.freeze({ enabled: v.CACHE, ttlMs: v.CACHE_TTL_MS, maxEntries: v.CACHE_MAX_ENTRIES, maxBytes: v.CACHE_MAX_BYTES }),
    breaker: Object.freeze({
      enabled: v.BREAKER,
      errorThresholdPercent: v.BREAKER_ERROR_THRESHOLD,
      volumeThreshold: v.BREAKER_VOLUME_THRESHOLD,
      windowMs: v.BREAKER_WINDOW_MS,
      resetTimeoutMs: v.BREAKER_RESET_TIMEOUT_MS,
    }),
    rateLimitRpm: v.RATE_LIMIT_RPM,
    retry: Object.freeze({
      maxRetries: v.UPSTREAM_RETRIES,
      onOverloaded: v.RETRY_ON_OVERLOADED,
      baseDelayMs: v.RETRY_BASE_DELAY_MS,
      maxDelayMs: v.RETRY_MAX_DELAY_MS,
      budgetPercent: v.RETRY_BUDGET_PERCENT,
    }),
  });
}
