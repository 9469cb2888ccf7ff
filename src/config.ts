import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseUpstreams, shorthandUpstream, type UpstreamTarget } from './upstream/targets.js';

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

/** Host header values as clients send them: `name` or `name:port`, IPv6 in brackets; compared lower-case. */
const hostList = (name: string) =>
  z
    .string()
    .transform((v) => v.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0))
    .refine((hosts) => hosts.length > 0 && hosts.every((h) => /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/.test(h)), {
      error: `${name} must be a comma-separated list of host or host:port values (IPv6 in brackets), e.g. gateway.internal:8080`,
    });

/**
 * The Redis endpoints a variable names, as the gateway and its Redis client read them: REDIS_URL is
 * one URL; REDIS_CLUSTER_NODES a comma-separated list of host:port or URLs (host:port means
 * redis://host:port); undefined for any other variable. The one split rule, shared by validation
 * and by --print-config (cli.ts).
 */
export function redisUrlsOf(name: string, value: string): string[] | undefined {
  if (name === 'REDIS_URL') return [value];
  if (name !== 'REDIS_CLUSTER_NODES') return undefined;
  return value.split(',').map((n) => n.trim()).filter((n) => n.length > 0).map((n) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(n) ? n : `redis://${n}`));
}

/**
 * A redis:// or rediss:// URL as the WHATWG URL parser (the one the Redis client uses) reads it,
 * with a host and, when `needsPort`, a port; undefined for anything else. A raw `@` in a password
 * is read as WHATWG reads it (the last `@` before the host ends the credentials).
 */
function parseRedisUrl(value: string, needsPort: boolean): URL | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return undefined;
    if (url.hostname === '' || (needsPort && url.port === '')) return undefined;
    return url;
  } catch {
    return undefined;
  }
}

/** REDIS_URL (one URL) or REDIS_CLUSTER_NODES (seed nodes with ports), validated; messages name the variable, never the value. */
const redisUrls = (name: 'REDIS_URL' | 'REDIS_CLUSTER_NODES') =>
  z
    .string()
    .transform((v) => redisUrlsOf(name, v) ?? [])
    .refine((urls) => urls.length > 0 && urls.every((u) => parseRedisUrl(u, name === 'REDIS_CLUSTER_NODES') !== undefined), {
      error:
        name === 'REDIS_URL'
          ? 'REDIS_URL must be a redis:// or rediss:// URL (redis://user:password@host:6379; percent-encode a password that contains / ? or #)'
          : 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port (or redis://host:port, rediss://user:password@host:port; percent-encode a password that contains , / ? or #)',
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
  PORT: int('PORT', 0, 65535).default(8080).describe('listen port (0 = any free port)'),
  HOST: z.string().min(1, { error: 'HOST must not be empty' }).default('0.0.0.0').describe('listen address'),
  UPSTREAM_URL: httpUrl('UPSTREAM_URL').default('https://api.anthropic.com').describe('Claude API base URL; may carry a path prefix'),
  UPSTREAMS: z.string().optional().describe('JSON array of upstreams (name, kind, url, tier, weight, api_key_env, models, ...) for failover; replaces UPSTREAM_URL (README "Failover")'),
  UPSTREAMS_FILE: z.string().optional().describe('JSON or YAML file holding the UPSTREAMS array (instead of UPSTREAMS)'),
  FAILOVER_MAX_ATTEMPTS: int('FAILOVER_MAX_ATTEMPTS', 1, 64).default(3).describe('upstream attempts one client call may make in total, failover moves and retries together (moves past open breakers are free) [3]'),
  PUBLIC_URL: httpUrl('PUBLIC_URL').optional().describe('the gateway\'s own base URL, used to rewrite batch results_url (unset: from the request\'s Host)'),
  BASE_PATH: basePath('BASE_PATH').default('').describe('path prefix clients use in their base URL (e.g. /anthropic), removed before forwarding'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'LOG_LEVEL must be one of fatal|error|warn|info|debug|trace|silent',
    })
    .default('info').describe('fatal, error, warn, info, debug, trace or silent'),
  UPSTREAM_CONNECTIONS: int('UPSTREAM_CONNECTIONS', 1, 1_000_000).optional().describe('Upstream connections at most [enough for MAX_CONCURRENT_REQUESTS live calls: that many with HTTP/1.1, divided by UPSTREAM_HTTP2_MAX_STREAMS with HTTP/2]'),
  UPSTREAM_POOL_WAIT_MS: int('UPSTREAM_POOL_WAIT_MS', 1, MS_DAY).default(5_000).describe('Longest a request waits for a free upstream connection before a 529 overloaded_error [5000]'),
  UPSTREAM_HTTP2: bool('UPSTREAM_HTTP2').default(false).describe('Speak HTTP/2 to the upstream: TLS+ALPN for https, prior-knowledge h2c for http [off]'),
  UPSTREAM_HTTP2_MAX_STREAMS: int('UPSTREAM_HTTP2_MAX_STREAMS', 1, 10_000).default(100).describe('Concurrent streams per upstream HTTP/2 connection (the server may lower it) [100]'),
  UPSTREAM_CA_FILE: z.string().optional().describe('PEM file of extra CA certificates to trust for an https upstream [unset = system CAs]'),
  UPSTREAM_CONNECT_TIMEOUT_MS: int('UPSTREAM_CONNECT_TIMEOUT_MS', 1, MS_DAY).default(10_000).describe('TCP/TLS connect timeout to upstream'),
  UPSTREAM_HEADERS_TIMEOUT_MS: int('UPSTREAM_HEADERS_TIMEOUT_MS', 1, MS_DAY).default(600_000).describe('time allowed until upstream response headers (long non-streaming calls)'),
  UPSTREAM_BODY_TIMEOUT_MS: int('UPSTREAM_BODY_TIMEOUT_MS', 1, MS_DAY).default(300_000).describe('longest silence allowed between two chunks of an upstream body (streams)'),
  UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: int('UPSTREAM_KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY).default(60_000).describe('how long an idle upstream socket is kept'),
  MAX_BODY_BYTES: int('MAX_BODY_BYTES', 1, 1024 * 1024 * 1024).default(32 * 1024 * 1024).describe('largest JSON request body; non-JSON uploads stream through unbuffered'),
  KEEP_ALIVE_TIMEOUT_MS: int('KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY).default(65_000).describe('idle client keep-alive (keep above your load balancer\'s idle timeout)'),
  LISTEN_BACKLOG: int('LISTEN_BACKLOG', 1, 65_535).default(4096).describe('pending client connections the kernel queues before accept (capped by net.core.somaxconn)'),
  SHUTDOWN_DELAY_MS: int('SHUTDOWN_DELAY_MS', 0, MS_DAY).default(0).describe('after SIGTERM, time /readyz answers 503 before the listener closes'),
  SHUTDOWN_GRACE_MS: int('SHUTDOWN_GRACE_MS', 0, MS_DAY).default(30_000).describe('time in-flight requests and streams get to finish after the listener closes'),
  GATEWAY_API_KEYS: keyList('GATEWAY_API_KEYS').optional().describe('comma-separated gateway keys (each >= 16 characters); unset = no gateway auth'),
  ANTHROPIC_API_KEY: z.string().min(1, { error: 'ANTHROPIC_API_KEY must not be empty when set' }).optional().describe('upstream key the gateway injects (requires GATEWAY_API_KEYS or ALLOW_OPEN_GATEWAY)'),
  ALLOW_OPEN_GATEWAY: bool('ALLOW_OPEN_GATEWAY').default(false).describe('allow ANTHROPIC_API_KEY without gateway keys'),
  TENANT_HASH_KEY: z.string().min(32, { error: 'TENANT_HASH_KEY must be at least 32 characters (a random secret, the same on every instance)' }).optional().describe('secret key of the HMAC that turns credentials into tenant ids (logs, coalescing, cache); same on every instance'),
  ALLOWED_HOSTS: hostList('ALLOWED_HOSTS').optional().describe('Host header values batch results_url may be built from (default: the listen address and localhost, with the listen port)'),
  MODELS: nameList('MODELS').optional().describe('model ids that always get their own metric label (others earn one from a 2xx upstream answer)'),
  COALESCE: bool('COALESCE').default(true).describe('share one upstream call among identical in-flight requests'),
  COALESCE_MAX_REPLAY_BYTES: int('COALESCE_MAX_REPLAY_BYTES', 0, 1024 * 1024 * 1024).default(4 * 1024 * 1024).describe('body bytes a flight keeps for late joiners; past it, new arrivals lead their own flight'),
  COALESCE_SUBSCRIBER_BUFFER_BYTES: int('COALESCE_SUBSCRIBER_BUFFER_BYTES', 1024, 1024 * 1024 * 1024).default(1024 * 1024).describe('how far (beyond the replay) one client may fall behind the newest byte before it alone is dropped'),
  COALESCE_LINGER_MS: int('COALESCE_LINGER_MS', 0, 60_000).default(100).describe('keep a finished complete 2xx answer (plain or stream) this long for identical arrivals; 0 = off'),
  COALESCE_LINGER_CATCHUP_MS: int('COALESCE_LINGER_CATCHUP_MS', 0, 60_000).default(2_000).describe('past COALESCE_LINGER_MS, a lingering answer still serves identical requests for at most this long while the gateway has not been idle once since the call ended (they may have waited in its sockets since within the window); 0 = off'),
  CLIENT_WRITE_STALL_MS: int('CLIENT_WRITE_STALL_MS', 100, MS_DAY).default(30_000).describe('A client whose socket takes no byte for this long while bytes wait for it is dropped (alone)'),
  MAX_SSE_EVENT_BYTES: int('MAX_SSE_EVENT_BYTES', 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024).describe('One upstream stream event larger than this fails the stream with a final SSE error event'),
  MODES: nameList('MODES').optional().describe('allowlist of x-gateway-mode values (others count as other); unset = the first MAX_MODES earned by a 2xx upstream answer'),
  MAX_MODES: int('MAX_MODES', 1, 1000).default(20).describe('distinct mode labels earned at most when no MODES allowlist is set'),
  MAX_MODELS: int('MAX_MODELS', 1, 1000).default(50).describe('distinct model labels kept (the rest count as other)'),
  PRICING_JSON: pricing('PRICING_JSON').optional().describe('price overrides in USD per million tokens: {"<model or family>": {"input": n, "output": n, "cache_creation": n, "cache_read": n}}'),
  CACHE: bool('CACHE').default(false).describe('exact-match response cache keyed by the coalescing fingerprint'),
  CACHE_TTL_MS: int('CACHE_TTL_MS', 1, 30 * MS_DAY).default(300_000).describe('lifetime of a cache entry'),
  CACHE_MAX_ENTRIES: int('CACHE_MAX_ENTRIES', 1, 10_000_000).default(1_000).describe('cache entries kept at most (least recently used out first)'),
  CACHE_MAX_BYTES: int('CACHE_MAX_BYTES', 1024, 64 * 1024 * 1024 * 1024).default(64 * 1024 * 1024).describe('cache bytes kept at most; larger answers are not cached'),
  REDIS_URL: redisUrls('REDIS_URL').optional().describe('redis:// or rediss:// URL: coalescing, rate limits and cache shared by every instance; unset = single instance'),
  REDIS_COMMAND_TIMEOUT_MS: int('REDIS_COMMAND_TIMEOUT_MS', 1, 60_000).default(250).describe('deadline of each Redis command; past it the gateway acts locally'),
  REDIS_RETRY_MS: int('REDIS_RETRY_MS', 1, 600_000).default(5_000).describe('after a Redis failure, local-only for this long before trying shared mode again'),
  REDIS_CLAIM_TTL_MS: int('REDIS_CLAIM_TTL_MS', 100, 600_000).default(5_000).describe('lifetime of a cross-instance flight claim without heartbeat'),
  REDIS_CLUSTER_NODES: redisUrls('REDIS_CLUSTER_NODES').optional().describe('Redis Cluster seed nodes, comma-separated host:port or redis(s):// URLs (credentials and TLS of the first apply to all)'),
  REDIS_TLS_CA_FILE: pemFile('REDIS_TLS_CA_FILE').optional().describe('PEM file of the CA that signed the Redis server certificate (rediss://), when it is not a public CA'),
  REDIS_STREAM_MAX_BYTES: int('REDIS_STREAM_MAX_BYTES', 1024, 1024 * 1024 * 1024).default(64 * 1024 * 1024).describe('Body bytes a leader relays to other instances at most; past it remote followers get an explicit error'),
  REDIS_CACHE_MAX_ENTRY_BYTES: int('REDIS_CACHE_MAX_ENTRY_BYTES', 0, 512 * 1024 * 1024).default(1024 * 1024).describe('Largest answer the shared cache writes to Redis; larger ones stay in the local cache only'),
  WORKERS: int('WORKERS', 1, 256).default(1).describe('gateway processes on this machine sharing the port (node:cluster)'),
  MAX_CONCURRENT_REQUESTS: int('MAX_CONCURRENT_REQUESTS', 1, 1_000_000).default(10_000).describe('requests in progress at most; past it the API answers 529 overloaded_error at once'),
  BREAKER: bool('BREAKER').default(true).describe('per-model circuit breaking'),
  BREAKER_ERROR_THRESHOLD: int('BREAKER_ERROR_THRESHOLD', 1, 100).default(50).describe('percent of failed upstream calls in the window that opens a breaker'),
  BREAKER_VOLUME_THRESHOLD: int('BREAKER_VOLUME_THRESHOLD', 1, 1_000_000).default(10).describe('calls in the window before the error rate is judged'),
  BREAKER_WINDOW_MS: int('BREAKER_WINDOW_MS', 100, MS_DAY).default(10_000).describe('rolling window of the error rate'),
  BREAKER_RESET_TIMEOUT_MS: int('BREAKER_RESET_TIMEOUT_MS', 1, MS_DAY).default(30_000).describe('time an open breaker waits before letting one probe through'),
  BREAKER_PROBE_TIMEOUT_MS: int('BREAKER_PROBE_TIMEOUT_MS', 1, MS_DAY).default(60_000).describe('A half-open probe that gets no upstream headers within this counts as a failure'),
  RATE_LIMIT_RPM: int('RATE_LIMIT_RPM', 0, 10_000_000).default(0).describe('requests per minute per client key (IP when none); 0 = off'),
  UPSTREAM_RETRIES: int('UPSTREAM_RETRIES', 0, 10).default(2).describe('gateway retries of calls that provably never reached upstream (connect failures), on the last upstream left and within FAILOVER_MAX_ATTEMPTS'),
  RETRY_ON_OVERLOADED: bool('RETRY_ON_OVERLOADED').default(false).describe('also retry upstream 529 answers (the SDK retries them itself by default)'),
  RETRY_BASE_DELAY_MS: int('RETRY_BASE_DELAY_MS', 0, 60_000).default(250).describe('full-jitter backoff base delay'),
  RETRY_MAX_DELAY_MS: int('RETRY_MAX_DELAY_MS', 0, 600_000).default(8_000).describe('full-jitter backoff cap; a longer retry-after is passed to the client instead'),
  RETRY_BUDGET_PERCENT: int('RETRY_BUDGET_PERCENT', 0, 100).default(10).describe('retries may add at most this share of requests (plus a reserve of 10)'),
});

/** One environment variable the configuration reads, as `--help` and `--print-config` show it. */
export interface ConfigVariable {
  readonly name: string;
  /** The schema's `.describe()` text ('' when a field has none: a unit test forbids that). */
  readonly description: string;
  /** The default as it would be written in the environment; undefined = unset unless given. */
  readonly defaultValue: string | undefined;
}

/**
 * Every variable the schema reads, in schema order, with its default and meaning. Generated from
 * the schema itself, so the operator CLI and the parser cannot disagree.
 */
export function configVariables(): ConfigVariable[] {
  return Object.entries(schema.shape).map(([name, field]: [string, z.ZodType]) => {
    const fallback: unknown = field instanceof z.ZodDefault ? field.def.defaultValue : undefined;
    return {
      name,
      description: field.description ?? '',
      defaultValue: fallback === undefined ? undefined : typeof fallback === 'string' ? fallback : JSON.stringify(fallback),
    };
  });
}

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Upstream origin, e.g. https://api.anthropic.com (no path). */
  readonly upstreamOrigin: string;
  /** Path prefix of UPSTREAM_URL ('' or '/something'), prepended to every forwarded path. */
  readonly upstreamPathPrefix: string;
  /** UPSTREAM_URL as given, without a trailing slash (the first upstream's base URL with UPSTREAMS). */
  readonly upstreamBaseUrl: string;
  /** Where calls go, in configuration order (UPSTREAMS, or the UPSTREAM_URL shorthand named `anthropic`). */
  readonly upstreams: readonly UpstreamTarget[];
  /** The gateway holds the upstream credentials (clients present gateway keys); false = clients bring their own. */
  readonly injectsCredentials: boolean;
  /** Upstream attempts one client call may make in total, failover moves and retries together. */
  readonly failoverMaxAttempts: number;
  readonly publicUrl: string | undefined;
  readonly basePath: string;
  readonly logLevel: string;
  /** Upstream connections at most (HTTP/2: each carries up to upstreamHttp2MaxStreams calls). */
  readonly upstreamConnections: number;
  readonly upstreamPoolWaitMs: number;
  readonly upstreamHttp2: boolean;
  readonly upstreamHttp2MaxStreams: number;
  /** PEM text of UPSTREAM_CA_FILE, read once at start-up. */
  readonly upstreamCa: string | undefined;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyTimeoutMs: number;
  readonly upstreamKeepAliveTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly keepAliveTimeoutMs: number;
  /** listen(2) backlog: a burst of new connections larger than it loses SYNs and waits for retries (1 s, 3 s...). */
  readonly listenBacklog: number;
  readonly shutdownDelayMs: number;
  readonly shutdownGraceMs: number;
  readonly gatewayApiKeys: readonly string[] | undefined;
  readonly anthropicApiKey: string | undefined;
  readonly allowOpenGateway: boolean;
  /** HMAC key for tenant ids; undefined = a random per-process key (chosen at start, with a warning). */
  readonly tenantHashKey: string | undefined;
  /** Host header values batch `results_url` may use; undefined = listen address and loopback names on the listen port. */
  readonly allowedHosts: ReadonlySet<string> | undefined;
  /** Model ids that always get their own metric label. */
  readonly models: ReadonlySet<string> | undefined;
  readonly coalesce: boolean;
  readonly coalesceMaxReplayBytes: number;
  readonly coalesceSubscriberBufferBytes: number;
  readonly coalesceLingerMs: number;
  /** Past the window, how long a lingering answer may still serve while the event loop has not been idle since the call ended. */
  readonly coalesceLingerCatchUpMs: number;
  readonly clientWriteStallMs: number;
  readonly maxSseEventBytes: number;
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
  /** Requests in progress at most; past it the API answers 529 overloaded_error at once (bounds every per-request structure). */
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
    readonly probeTimeoutMs: number;
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
  // One rule for both ways of naming Redis: every instance that shares it must hash tenants alike.
  const redisVariable = v.REDIS_URL !== undefined ? 'REDIS_URL' : v.REDIS_CLUSTER_NODES !== undefined ? 'REDIS_CLUSTER_NODES' : undefined;
  if (redisVariable !== undefined && v.TENANT_HASH_KEY === undefined) {
    problems.push(
      `${redisVariable} is set but TENANT_HASH_KEY is not: instances would hash tenants with different random keys, ` +
        'so cross-instance coalescing and the shared cache could never match. Set TENANT_HASH_KEY to the same secret on every instance',
    );
  }
  let upstreamCa: string | undefined;
  if (v.UPSTREAM_CA_FILE !== undefined) {
    try {
      upstreamCa = readFileSync(v.UPSTREAM_CA_FILE, 'utf8');
      if (!upstreamCa.includes('-----BEGIN CERTIFICATE-----')) problems.push('UPSTREAM_CA_FILE must be a PEM file of CA certificates');
    } catch {
      problems.push('UPSTREAM_CA_FILE cannot be read (must be a readable PEM file)');
    }
  }
  let upstreams: UpstreamTarget[] | undefined;
  if (v.UPSTREAMS !== undefined || v.UPSTREAMS_FILE !== undefined) {
    if (presentOnly(env).UPSTREAM_URL !== undefined) problems.push('UPSTREAM_URL and UPSTREAMS/UPSTREAMS_FILE are both set: list every upstream in UPSTREAMS');
    upstreams = parseUpstreams({ inline: v.UPSTREAMS, file: v.UPSTREAMS_FILE }, env, problems);
    if (upstreams?.some((u) => u.holdsCredentials) === true && v.GATEWAY_API_KEYS === undefined && !v.ALLOW_OPEN_GATEWAY) {
      problems.push(
        'UPSTREAMS holds credentials (api_key_env, bedrock or vertex) but GATEWAY_API_KEYS is not set: anyone who reaches the gateway would spend them. ' +
          'Set GATEWAY_API_KEYS, or ALLOW_OPEN_GATEWAY=true to run open on purpose',
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const first = upstreams?.[0];
  const upstream = first === undefined ? new URL(v.UPSTREAM_URL) : new URL(first.origin + first.pathPrefix);
  const upstreamPathPrefix = upstream.pathname.replace(/\/+$/, '');
  const targets = upstreams ?? [shorthandUpstream(upstream, v.ANTHROPIC_API_KEY)];
  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    upstreamOrigin: upstream.origin,
    upstreamPathPrefix,
    upstreamBaseUrl: upstream.origin + upstreamPathPrefix,
    upstreams: Object.freeze(targets),
    injectsCredentials: targets.some((t) => t.holdsCredentials),
    failoverMaxAttempts: v.FAILOVER_MAX_ATTEMPTS,
    publicUrl: v.PUBLIC_URL?.replace(/\/+$/, ''),
    basePath: v.BASE_PATH,
    logLevel: v.LOG_LEVEL,
    // By default every request the gateway admits can be live upstream at once: the only queue is the
    // one an operator creates by lowering UPSTREAM_CONNECTIONS, and UPSTREAM_POOL_WAIT_MS bounds it.
    upstreamConnections:
      v.UPSTREAM_CONNECTIONS ?? (v.UPSTREAM_HTTP2 ? Math.ceil(v.MAX_CONCURRENT_REQUESTS / v.UPSTREAM_HTTP2_MAX_STREAMS) : v.MAX_CONCURRENT_REQUESTS),
    upstreamPoolWaitMs: v.UPSTREAM_POOL_WAIT_MS,
    upstreamHttp2: v.UPSTREAM_HTTP2,
    upstreamHttp2MaxStreams: v.UPSTREAM_HTTP2_MAX_STREAMS,
    upstreamCa,
    upstreamConnectTimeoutMs: v.UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamHeadersTimeoutMs: v.UPSTREAM_HEADERS_TIMEOUT_MS,
    upstreamBodyTimeoutMs: v.UPSTREAM_BODY_TIMEOUT_MS,
    upstreamKeepAliveTimeoutMs: v.UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    keepAliveTimeoutMs: v.KEEP_ALIVE_TIMEOUT_MS,
    listenBacklog: v.LISTEN_BACKLOG,
    shutdownDelayMs: v.SHUTDOWN_DELAY_MS,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    gatewayApiKeys: v.GATEWAY_API_KEYS ? Object.freeze([...v.GATEWAY_API_KEYS]) : undefined,
    anthropicApiKey: v.ANTHROPIC_API_KEY,
    allowOpenGateway: v.ALLOW_OPEN_GATEWAY,
    tenantHashKey: v.TENANT_HASH_KEY,
    allowedHosts: v.ALLOWED_HOSTS ? new Set(v.ALLOWED_HOSTS) : undefined,
    models: v.MODELS ? new Set(v.MODELS) : undefined,
    coalesce: v.COALESCE,
    coalesceMaxReplayBytes: v.COALESCE_MAX_REPLAY_BYTES,
    coalesceSubscriberBufferBytes: v.COALESCE_SUBSCRIBER_BUFFER_BYTES,
    coalesceLingerMs: v.COALESCE_LINGER_MS,
    coalesceLingerCatchUpMs: v.COALESCE_LINGER_CATCHUP_MS,
    clientWriteStallMs: v.CLIENT_WRITE_STALL_MS,
    maxSseEventBytes: v.MAX_SSE_EVENT_BYTES,
    modes: v.MODES ? new Set([...v.MODES, 'default']) : undefined,
    maxModes: v.MAX_MODES,
    maxModels: v.MAX_MODELS,
    pricing: v.PRICING_JSON ?? {},
    redis:
      v.REDIS_URL === undefined && v.REDIS_CLUSTER_NODES === undefined
        ? undefined
        : Object.freeze({
            url: v.REDIS_URL?.[0] ?? (v.REDIS_CLUSTER_NODES?.[0] as string),
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
      probeTimeoutMs: v.BREAKER_PROBE_TIMEOUT_MS,
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
