import { readFileSync } from 'node:fs';
import { PRICE_FIELDS, type Price } from './core/pricing.js';
import { defaultUpstreamConnections } from './upstream/connections.js';
import { parseUpstreams, shorthandUpstream, type UpstreamTarget } from './upstream/targets.js';

/**
 * Configuration comes only from the environment, is validated once at start-up and is frozen.
 * Every problem is reported with the variable's name and what it accepts; start-up stops on any.
 */

/**
 * How one variable's text is checked and read: its value, or a thrown VariableProblem whose message
 * names the variable, never the value (it may be a secret). Plain functions: the table below is
 * read once at start-up, and a schema library would be held in memory for the life of the process.
 */
type Read<T> = (text: string) => T;

class VariableProblem extends Error {}

const refuse = (message: string): never => {
  throw new VariableProblem(message);
};

/** Any text (empty values never reach a reader: they count as unset). */
const text = (): Read<string> => (v) => v;

/** Text of at least `min` characters. */
const atLeast = (min: number, message: string): Read<string> => (v) => (v.length >= min ? v : refuse(message));

/** One of `values`. */
const oneOf =
  <const T extends string>(values: readonly T[], message: string): Read<T> =>
  (v) =>
    (values as readonly string[]).includes(v) ? (v as T) : refuse(message);

const TRUE_WORDS: ReadonlySet<string> = new Set(['on', 'true', '1', 'yes']);
const bool = (name: string): Read<boolean> => {
  const word = oneOf(['on', 'off', 'true', 'false', '1', '0', 'yes', 'no'], `${name} must be one of on|off|true|false|1|0|yes|no`);
  return (v) => TRUE_WORDS.has(word(v));
};

const int = (name: string, min: number, max: number): Read<number> => {
  const message = `${name} must be a whole number from ${min} to ${max}`;
  return (v) => {
    if (!/^\d+$/.test(v)) refuse(message);
    const n = Number(v);
    return n >= min && n <= max ? n : refuse(message);
  };
};

const httpUrl =
  (name: string): Read<string> =>
  (v) => {
    try {
      const u = new URL(v);
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.search === '' && u.hash === '') return v;
    } catch {
      // refused below
    }
    return refuse(`${name} must be an absolute http(s) URL without query or fragment, e.g. https://api.anthropic.com`);
  };

const keyList =
  (name: string): Read<string[]> =>
  (v) => {
    const keys = v.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
    if (keys.length === 0) refuse(`${name} must list at least one key (comma-separated)`);
    if (!keys.every((k) => k.length >= 16)) refuse(`${name}: every key must be at least 16 characters`);
    return keys;
  };

const basePath =
  (name: string): Read<string> =>
  (v) =>
    v === '' || /^\/[A-Za-z0-9._~\-/]*[^/]$/.test(v) ? v : refuse(`${name} must be empty or a path like /anthropic (leading slash, no trailing slash)`);

/** Host header values as clients send them: `name` or `name:port`, IPv6 in brackets; compared lower-case. */
const hostList =
  (name: string): Read<string[]> =>
  (v) => {
    const hosts = v.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0);
    return hosts.length > 0 && hosts.every((h) => /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/.test(h))
      ? hosts
      : refuse(`${name} must be a comma-separated list of host or host:port values (IPv6 in brackets), e.g. gateway.internal:8080`);
  };

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
const redisUrls =
  (name: 'REDIS_URL' | 'REDIS_CLUSTER_NODES'): Read<string[]> =>
  (v) => {
    const urls = redisUrlsOf(name, v) ?? [];
    if (urls.length > 0 && urls.every((u) => parseRedisUrl(u, name === 'REDIS_CLUSTER_NODES') !== undefined)) return urls;
    return refuse(
      name === 'REDIS_URL'
        ? 'REDIS_URL must be a redis:// or rediss:// URL (redis://user:password@host:6379; percent-encode a password that contains / ? or #)'
        : 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port (or redis://host:port, rediss://user:password@host:port; percent-encode a password that contains , / ? or #)',
    );
  };

/** A PostgreSQL connection URL (node-postgres reads it); the message never echoes it (it may hold a password). */
const postgresUrl =
  (name: string): Read<string> =>
  (v) => {
    try {
      const u = new URL(v);
      if ((u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '') return v;
    } catch {
      // refused below
    }
    return refuse(`${name} must be a postgres:// or postgresql:// URL with a host, e.g. postgres://gateway:password@db:5432/gateway (percent-encode / ? # @ in the password)`);
  };

/** A readable PEM file; its content. */
const pemFile =
  (name: string): Read<string> =>
  (path) => {
    try {
      const pem = readFileSync(path, 'utf8');
      if (pem.includes('-----BEGIN')) return pem;
    } catch {
      // refused below
    }
    return refuse(`${name} must name a readable PEM file`);
  };

const MS_DAY = 86_400_000;

const pricing =
  (name: string): Read<Record<string, Price>> =>
  (v) => {
    const problem = `${name} must be a JSON object {"<model or family>": {"input": n, "output": n, "cache_creation": n, "cache_read": n}} in USD per million tokens`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      return refuse(problem);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return refuse(problem);
    const out: Record<string, Price> = {};
    for (const [model, price] of Object.entries(parsed as Record<string, unknown>)) {
      // The price fields PRICING_JSON requires (others are ignored), from the one price shape.
      const p = price as Record<string, unknown> | null;
      if (typeof p !== 'object' || p === null || !PRICE_FIELDS.every((f) => typeof p[f] === 'number' && p[f] >= 0)) return refuse(problem);
      out[model] = Object.fromEntries(PRICE_FIELDS.map((f) => [f, p[f]])) as Price;
    }
    return out;
  };

const nameList =
  (name: string): Read<string[]> =>
  (v) => {
    const names = v.split(',').map((k) => k.trim().toLowerCase()).filter((k) => k.length > 0);
    return names.length > 0 && names.every((n) => /^[a-z0-9_.:-]{1,64}$/.test(n))
      ? names
      : refuse(`${name} must be a comma-separated list of names made of a-z 0-9 _ . : - (at most 64 characters each)`);
  };

/**
 * One row of the configuration table: how the variable's text is checked and read (messages name the
 * variable, never its value), its default as it would be written in the environment (parsed like a
 * given value, so a default cannot be one the variable refuses), what it means (`--help`), and
 * whether its whole value is a secret (`--print-config` redacts it; `--help` says so).
 */
interface Variable {
  readonly schema: Read<unknown>;
  /** undefined = unset unless given. */
  readonly default?: string;
  readonly description: string;
  readonly secret?: true;
}

/**
 * Every variable the gateway reads, in the order `--help`, `--print-config` and README list them.
 * README "Configuration" is checked against this table (test/integration/readme.test.ts).
 * A new variable: one row here, one field in `configOf` below, one README row.
 */
const VARIABLES = {
  PORT: { schema: int('PORT', 0, 65535), default: '8080', description: 'listen port (0 = any free port)' },
  HOST: { schema: atLeast(1, 'HOST must not be empty'), default: '0.0.0.0', description: 'listen address' },
  UPSTREAM_URL: { schema: httpUrl('UPSTREAM_URL'), default: 'https://api.anthropic.com', description: 'Claude API base URL; may carry a path prefix' },
  UPSTREAMS: { schema: text(), description: 'JSON array of upstreams (name, kind, url, tier, weight, api_key_env, models, ...) for failover; replaces UPSTREAM_URL (README "Failover")' },
  UPSTREAMS_FILE: { schema: text(), description: 'JSON or YAML file holding the UPSTREAMS array (instead of UPSTREAMS)' },
  CACHE_AFFINITY: { schema: bool('CACHE_AFFINITY'), default: 'true', description: 'prefer the upstream key that last served the same cached prompt head (tools and system with a cache_control breakpoint) for the tenant while it is warm; health always overrides it' },
  FAILOVER_MAX_ATTEMPTS: { schema: int('FAILOVER_MAX_ATTEMPTS', 1, 64), default: '3', description: 'upstream attempts one client call may make in total, failover moves and retries together (moves past open breakers are free) [3]' },
  PUBLIC_URL: { schema: httpUrl('PUBLIC_URL'), description: 'the gateway\'s own base URL, used to rewrite batch results_url (unset: from the request\'s Host)' },
  BASE_PATH: { schema: basePath('BASE_PATH'), default: '', description: 'path prefix clients use in their base URL (e.g. /anthropic), removed before forwarding' },
  LOG_LEVEL: {
    schema: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'LOG_LEVEL must be one of fatal|error|warn|info|debug|trace|silent'),
    default: 'info',
    description: 'fatal, error, warn, info, debug, trace or silent',
  },
  UPSTREAM_CONNECTIONS: { schema: int('UPSTREAM_CONNECTIONS', 1, 1_000_000), description: 'Upstream connections at most [enough for MAX_CONCURRENT_REQUESTS live calls: that many with HTTP/1.1, divided by UPSTREAM_HTTP2_MAX_STREAMS with HTTP/2]' },
  UPSTREAM_POOL_WAIT_MS: { schema: int('UPSTREAM_POOL_WAIT_MS', 1, MS_DAY), default: '5000', description: 'Longest a request waits for a free upstream connection before a 529 overloaded_error [5000]' },
  UPSTREAM_HTTP2: { schema: bool('UPSTREAM_HTTP2'), default: 'false', description: 'Speak HTTP/2 to the upstream: TLS+ALPN for https, prior-knowledge h2c for http [off]' },
  UPSTREAM_HTTP2_MAX_STREAMS: { schema: int('UPSTREAM_HTTP2_MAX_STREAMS', 1, 10_000), default: '100', description: 'Concurrent streams per upstream HTTP/2 connection (the server may lower it) [100]' },
  UPSTREAM_CA_FILE: { schema: text(), description: 'PEM file of extra CA certificates to trust for an https upstream [unset = system CAs]' },
  UPSTREAM_CONNECT_TIMEOUT_MS: { schema: int('UPSTREAM_CONNECT_TIMEOUT_MS', 1, MS_DAY), default: '10000', description: 'TCP/TLS connect timeout to upstream' },
  UPSTREAM_HEADERS_TIMEOUT_MS: { schema: int('UPSTREAM_HEADERS_TIMEOUT_MS', 1, MS_DAY), default: '600000', description: 'time allowed until upstream response headers (long non-streaming calls)' },
  UPSTREAM_BODY_TIMEOUT_MS: { schema: int('UPSTREAM_BODY_TIMEOUT_MS', 1, MS_DAY), default: '300000', description: 'longest silence allowed between two chunks of an upstream body (streams)' },
  UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: { schema: int('UPSTREAM_KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY), default: '60000', description: 'how long an idle upstream socket is kept' },
  MAX_BODY_BYTES: { schema: int('MAX_BODY_BYTES', 1, 1024 * 1024 * 1024), default: String(32 * 1024 * 1024), description: 'largest JSON request body; non-JSON uploads stream through unbuffered' },
  KEEP_ALIVE_TIMEOUT_MS: { schema: int('KEEP_ALIVE_TIMEOUT_MS', 1, MS_DAY), default: '65000', description: 'idle client keep-alive (keep above your load balancer\'s idle timeout)' },
  LISTEN_BACKLOG: { schema: int('LISTEN_BACKLOG', 1, 65_535), default: '4096', description: 'pending client connections the kernel queues before accept (capped by net.core.somaxconn)' },
  SHUTDOWN_DELAY_MS: { schema: int('SHUTDOWN_DELAY_MS', 0, MS_DAY), default: '0', description: 'after SIGTERM, time /readyz answers 503 before the listener closes' },
  SHUTDOWN_GRACE_MS: { schema: int('SHUTDOWN_GRACE_MS', 0, MS_DAY), default: '30000', description: 'time in-flight requests and streams get to finish after the listener closes' },
  GATEWAY_API_KEYS: { schema: keyList('GATEWAY_API_KEYS'), description: 'comma-separated gateway keys (each >= 16 characters); unset = no gateway auth', secret: true },
  ANTHROPIC_API_KEY: { schema: atLeast(1, 'ANTHROPIC_API_KEY must not be empty when set'), description: 'upstream key the gateway injects (requires GATEWAY_API_KEYS or ALLOW_OPEN_GATEWAY)', secret: true },
  ALLOW_OPEN_GATEWAY: { schema: bool('ALLOW_OPEN_GATEWAY'), default: 'false', description: 'allow ANTHROPIC_API_KEY without gateway keys' },
  TENANT_HASH_KEY: { schema: atLeast(32, 'TENANT_HASH_KEY must be at least 32 characters (a random secret, the same on every instance)'), description: 'secret key of the HMAC that turns credentials into tenant ids (logs, coalescing, cache); same on every instance', secret: true },
  ADMIN_API_KEY: { schema: atLeast(32, 'ADMIN_API_KEY must be at least 32 characters (a random secret)'), description: 'admin credential (Authorization: Bearer) of the admin API; setting it turns on the governance store (database keys, teams, spend ledger) and the admin listener', secret: true },
  ADMIN_VIEWER_KEY: { schema: atLeast(32, 'ADMIN_VIEWER_KEY must be at least 32 characters (a random secret)'), description: 'read-only credential of the web console (/console on the admin listener): may look, never change; needs ADMIN_API_KEY', secret: true },
  ADMIN_HOST: { schema: atLeast(1, 'ADMIN_HOST must not be empty'), default: '127.0.0.1', description: 'admin listener address (loopback: the admin API never faces the clients\' network unless you say so)' },
  ADMIN_PORT: { schema: int('ADMIN_PORT', 0, 65535), default: '8081', description: 'admin listener port (0 = any free port); must differ from PORT' },
  DATABASE_URL: { schema: postgresUrl('DATABASE_URL'), description: 'postgres(ql):// URL of the PostgreSQL every instance shares for keys, teams and the ledger; unset = embedded PGlite in GOVERNANCE_DATA_DIR (one instance)', secret: true },
  GOVERNANCE_DATA_DIR: { schema: atLeast(1, 'GOVERNANCE_DATA_DIR must not be empty'), default: 'data/governance', description: 'directory of the embedded store (PGlite) when DATABASE_URL is unset, relative to the working directory; memory: keeps nothing (tests)' },
  GOVERNANCE_POLL_MS: { schema: int('GOVERNANCE_POLL_MS', 100, 5_000), default: '1000', description: 'how often each instance reads key and team changes from the store (revocations, rotations, limits, budgets apply within this plus one query)' },
  ALLOWED_HOSTS: { schema: hostList('ALLOWED_HOSTS'), description: 'Host header values batch results_url may be built from (default: the listen address and localhost, with the listen port)' },
  MODELS: { schema: nameList('MODELS'), description: 'model ids that always get their own metric label (others earn one from a 2xx upstream answer)' },
  COALESCE: { schema: bool('COALESCE'), default: 'true', description: 'share one upstream call among identical in-flight requests' },
  COALESCE_MAX_REPLAY_BYTES: { schema: int('COALESCE_MAX_REPLAY_BYTES', 0, 1024 * 1024 * 1024), default: String(4 * 1024 * 1024), description: 'body bytes a flight keeps for late joiners; past it, new arrivals lead their own flight' },
  COALESCE_SUBSCRIBER_BUFFER_BYTES: { schema: int('COALESCE_SUBSCRIBER_BUFFER_BYTES', 1024, 1024 * 1024 * 1024), default: String(1024 * 1024), description: 'how far (beyond the replay) one client may fall behind the newest byte before it alone is dropped' },
  COALESCE_LINGER_MS: { schema: int('COALESCE_LINGER_MS', 0, 60_000), default: '100', description: 'keep a finished complete 2xx answer (plain or stream) this long for identical arrivals; 0 = off' },
  COALESCE_REJOIN_MS: { schema: int('COALESCE_REJOIN_MS', 0, 60_000), default: '0', description: 'when the last client of a shared call leaves before its answer completed, keep the call this long for an identical request to join with full replay (a retry never pays twice); nobody joins: aborted when the window ends; 0 = off (aborted at once)' },
  COALESCE_LINGER_CATCHUP_MS: { schema: int('COALESCE_LINGER_CATCHUP_MS', 0, 60_000), default: '2000', description: 'past COALESCE_LINGER_MS, a lingering answer still serves identical requests for at most this long while the gateway has not been idle once since the call ended (they may have waited in its sockets since within the window); 0 = off' },
  CLIENT_WRITE_STALL_MS: { schema: int('CLIENT_WRITE_STALL_MS', 100, MS_DAY), default: '30000', description: 'A client whose socket takes no byte for this long while bytes wait for it is dropped (alone)' },
  MAX_SSE_EVENT_BYTES: { schema: int('MAX_SSE_EVENT_BYTES', 1024, 1024 * 1024 * 1024), default: String(8 * 1024 * 1024), description: 'One upstream stream event larger than this fails the stream with a final SSE error event' },
  MODES: { schema: nameList('MODES'), description: 'allowlist of x-gateway-mode values (others count as other); unset = the first MAX_MODES earned by a 2xx upstream answer' },
  MAX_MODES: { schema: int('MAX_MODES', 1, 1000), default: '20', description: 'distinct mode labels earned at most when no MODES allowlist is set' },
  MAX_MODELS: { schema: int('MAX_MODELS', 1, 1000), default: '50', description: 'distinct model labels kept (the rest count as other)' },
  PRICING_JSON: { schema: pricing('PRICING_JSON'), description: 'price overrides in USD per million tokens: {"<model or family>": {"input": n, "output": n, "cache_creation": n, "cache_read": n}}' },
  CACHE: { schema: bool('CACHE'), default: 'false', description: 'exact-match response cache keyed by the coalescing fingerprint' },
  CACHE_TTL_MS: { schema: int('CACHE_TTL_MS', 1, 30 * MS_DAY), default: '300000', description: 'lifetime of a cache entry' },
  CACHE_MAX_ENTRIES: { schema: int('CACHE_MAX_ENTRIES', 1, 10_000_000), default: '1000', description: 'cache entries kept at most (least recently used out first)' },
  CACHE_MAX_BYTES: { schema: int('CACHE_MAX_BYTES', 1024, 64 * 1024 * 1024 * 1024), default: String(64 * 1024 * 1024), description: 'cache bytes kept at most; larger answers are not cached' },
  REDIS_URL: { schema: redisUrls('REDIS_URL'), description: 'redis:// or rediss:// URL: coalescing, rate limits and cache shared by every instance; unset = single instance' },
  REDIS_COMMAND_TIMEOUT_MS: { schema: int('REDIS_COMMAND_TIMEOUT_MS', 1, 60_000), default: '250', description: 'deadline of each Redis command; past it the gateway acts locally' },
  REDIS_RETRY_MS: { schema: int('REDIS_RETRY_MS', 1, 600_000), default: '5000', description: 'after a Redis failure, local-only for this long before trying shared mode again' },
  REDIS_CLAIM_TTL_MS: { schema: int('REDIS_CLAIM_TTL_MS', 100, 600_000), default: '5000', description: 'lifetime of a cross-instance flight claim without heartbeat' },
  REDIS_CLUSTER_NODES: { schema: redisUrls('REDIS_CLUSTER_NODES'), description: 'Redis Cluster seed nodes, comma-separated host:port or redis(s):// URLs (credentials and TLS of the first apply to all)' },
  REDIS_TLS_CA_FILE: { schema: pemFile('REDIS_TLS_CA_FILE'), description: 'PEM file of the CA that signed the Redis server certificate (rediss://), when it is not a public CA' },
  REDIS_STREAM_MAX_BYTES: { schema: int('REDIS_STREAM_MAX_BYTES', 1024, 1024 * 1024 * 1024), default: String(64 * 1024 * 1024), description: 'Body bytes a leader relays to other instances at most; past it remote followers get an explicit error' },
  REDIS_CACHE_MAX_ENTRY_BYTES: { schema: int('REDIS_CACHE_MAX_ENTRY_BYTES', 0, 512 * 1024 * 1024), default: String(1024 * 1024), description: 'Largest answer the shared cache writes to Redis; larger ones stay in the local cache only' },
  WORKERS: { schema: int('WORKERS', 1, 256), default: '1', description: 'gateway processes on this machine sharing the port (node:cluster)' },
  MAX_CONCURRENT_REQUESTS: { schema: int('MAX_CONCURRENT_REQUESTS', 1, 1_000_000), default: '10000', description: 'requests in progress at most; past it the API answers 529 overloaded_error at once' },
  BREAKER: { schema: bool('BREAKER'), default: 'true', description: 'per-model circuit breaking' },
  BREAKER_ERROR_THRESHOLD: { schema: int('BREAKER_ERROR_THRESHOLD', 1, 100), default: '50', description: 'percent of failed upstream calls in the window that opens a breaker' },
  BREAKER_VOLUME_THRESHOLD: { schema: int('BREAKER_VOLUME_THRESHOLD', 1, 1_000_000), default: '10', description: 'calls in the window before the error rate is judged' },
  BREAKER_WINDOW_MS: { schema: int('BREAKER_WINDOW_MS', 100, MS_DAY), default: '10000', description: 'rolling window of the error rate' },
  BREAKER_RESET_TIMEOUT_MS: { schema: int('BREAKER_RESET_TIMEOUT_MS', 1, MS_DAY), default: '30000', description: 'time an open breaker waits before letting one probe through' },
  BREAKER_PROBE_TIMEOUT_MS: { schema: int('BREAKER_PROBE_TIMEOUT_MS', 1, MS_DAY), default: '60000', description: 'A half-open probe that gets no upstream headers within this counts as a failure' },
  BUDGET_FAIL_MODE: {
    schema: oneOf(['closed', 'open'], 'BUDGET_FAIL_MODE must be closed or open'),
    default: 'closed',
    description: 'while budgets cannot be checked (Redis or the spend ledger unreachable): closed refuses database keys\' calls (503), open admits them unchecked',
  },
  RATE_LIMIT_RPM: { schema: int('RATE_LIMIT_RPM', 0, 10_000_000), default: '0', description: 'requests per minute per client key (IP when none); 0 = off' },
  UPSTREAM_RETRIES: { schema: int('UPSTREAM_RETRIES', 0, 10), default: '2', description: 'gateway retries of calls that provably never reached upstream (connect failures), on the last upstream left and within FAILOVER_MAX_ATTEMPTS' },
  RETRY_ON_OVERLOADED: { schema: bool('RETRY_ON_OVERLOADED'), default: 'false', description: 'also retry upstream 529 answers (the SDK retries them itself by default)' },
  RETRY_BASE_DELAY_MS: { schema: int('RETRY_BASE_DELAY_MS', 0, 60_000), default: '250', description: 'full-jitter backoff base delay' },
  RETRY_MAX_DELAY_MS: { schema: int('RETRY_MAX_DELAY_MS', 0, 600_000), default: '8000', description: 'full-jitter backoff cap; a longer retry-after is passed to the client instead' },
  RETRY_BUDGET_PERCENT: { schema: int('RETRY_BUDGET_PERCENT', 0, 100), default: '10', description: 'retries may add at most this share of requests (plus a reserve of 10)' },
} as const satisfies Record<string, Variable>;

type Table = typeof VARIABLES;
/** What a row reads: its value, or undefined when the variable is unset and has no default. */
type ValueOf<V> = V extends { readonly schema: Read<infer T>; readonly default: string } ? T : V extends { readonly schema: Read<infer T> } ? T | undefined : never;

/** The variables as parsed: a value or its default; undefined for an optional variable left unset. */
type Environment = { [K in keyof Table]: ValueOf<Table[K]> };

/**
 * Reads every variable of the table in table order (a default is read as if given); the problems,
 * one per variable that was refused, in the same order.
 */
function readEnvironment(present: Record<string, string>): { environment: Environment; problems: string[] } {
  const environment: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, row] of Object.entries(VARIABLES) as [string, Variable][]) {
    const given = present[name] ?? row.default;
    if (given === undefined) continue;
    try {
      environment[name] = row.schema(given);
    } catch (err) {
      if (!(err instanceof VariableProblem)) throw err;
      problems.push(err.message);
    }
  }
  return { environment: environment as Environment, problems };
}

/** One environment variable the configuration reads, as `--help` and `--print-config` show it. */
export interface ConfigVariable {
  readonly name: string;
  /** What it means ('' when a row has none: a unit test forbids that). */
  readonly description: string;
  /** The default as it would be written in the environment; undefined = unset unless given. */
  readonly defaultValue: string | undefined;
  /** The whole value is a secret (the table says so): `--print-config` never shows it. */
  readonly secret?: boolean;
}

/** Every variable of the table, in table order, with its default, meaning and secrecy. */
export function configVariables(): ConfigVariable[] {
  return (Object.entries(VARIABLES) as [string, Variable][]).map(([name, row]) => ({
    name,
    description: row.description,
    defaultValue: row.default,
    secret: row.secret === true,
  }));
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
  for (const key of Object.keys(VARIABLES)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') out[key] = value.trim();
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { environment: v, problems: refused } = readEnvironment(presentOnly(env));
  // Messages name the variable; values are never echoed (they may be secrets).
  if (refused.length > 0) throw new ConfigError(refused);
  const problems: string[] = [];
  // With ADMIN_API_KEY every API request needs a gateway key (static or from the database): not open.
  const keyed = v.GATEWAY_API_KEYS !== undefined || v.ADMIN_API_KEY !== undefined;
  if (v.ANTHROPIC_API_KEY !== undefined && !keyed && !v.ALLOW_OPEN_GATEWAY) {
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
  if (v.ADMIN_VIEWER_KEY !== undefined && v.ADMIN_API_KEY === undefined) problems.push('ADMIN_VIEWER_KEY is set but ADMIN_API_KEY is not: the console lives on the admin listener, which ADMIN_API_KEY turns on');
  if (v.ADMIN_API_KEY !== undefined) {
    if (v.GATEWAY_API_KEYS?.includes(v.ADMIN_API_KEY) === true) {
      problems.push('ADMIN_API_KEY equals a GATEWAY_API_KEYS entry: the admin credential must be a secret of its own (a client key must never administer)');
    }
    if (v.ADMIN_PORT === v.PORT && v.PORT !== 0) problems.push('ADMIN_PORT equals PORT: the admin API needs a listener of its own (README, "Keys, teams and budgets")');
    if (v.ADMIN_VIEWER_KEY !== undefined && (v.ADMIN_VIEWER_KEY === v.ADMIN_API_KEY || v.GATEWAY_API_KEYS?.includes(v.ADMIN_VIEWER_KEY) === true)) {
      problems.push('ADMIN_VIEWER_KEY equals ADMIN_API_KEY or a GATEWAY_API_KEYS entry: the viewer credential must be a secret of its own');
    }
    if (v.DATABASE_URL === undefined && v.WORKERS > 1) {
      problems.push('ADMIN_API_KEY with WORKERS > 1 needs DATABASE_URL: the embedded store (GOVERNANCE_DATA_DIR) belongs to one process');
    }
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
    if (upstreams?.some((u) => u.holdsCredentials) === true && !keyed && !v.ALLOW_OPEN_GATEWAY) {
      problems.push(
        'UPSTREAMS holds credentials (api_key_env, bedrock or vertex) but GATEWAY_API_KEYS is not set: anyone who reaches the gateway would spend them. ' +
          'Set GATEWAY_API_KEYS, or ALLOW_OPEN_GATEWAY=true to run open on purpose',
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return configOf(v, upstreams, upstreamCa);
}

const readonlySet = (values: readonly string[] | undefined): ReadonlySet<string> | undefined => (values === undefined ? undefined : new Set(values));

/**
 * The configuration the gateway runs with, from the checked variables (every cross-variable rule
 * has passed). Its return type is `Config`: each field is named and documented here, once.
 */
function configOf(v: Environment, upstreams: readonly UpstreamTarget[] | undefined, upstreamCa: string | undefined) {
  const first = upstreams?.[0];
  const upstream = first === undefined ? new URL(v.UPSTREAM_URL) : new URL(first.origin + first.pathPrefix);
  const upstreamPathPrefix = upstream.pathname.replace(/\/+$/, '');
  const targets: readonly UpstreamTarget[] = Object.freeze(upstreams ?? [shorthandUpstream(upstream, v.ANTHROPIC_API_KEY)]);
  const pricing: Readonly<Record<string, Price>> = v.PRICING_JSON ?? {};
  const limits = { maxConcurrentRequests: v.MAX_CONCURRENT_REQUESTS, upstreamHttp2MaxStreams: v.UPSTREAM_HTTP2_MAX_STREAMS };
  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    /** Upstream origin, e.g. https://api.anthropic.com (no path). */
    upstreamOrigin: upstream.origin,
    /** Path prefix of UPSTREAM_URL ('' or '/something'), prepended to every forwarded path. */
    upstreamPathPrefix,
    /** UPSTREAM_URL as given, without a trailing slash (the first upstream's base URL with UPSTREAMS). */
    upstreamBaseUrl: upstream.origin + upstreamPathPrefix,
    /** Where calls go, in configuration order (UPSTREAMS, or the UPSTREAM_URL shorthand named `anthropic`). */
    upstreams: targets,
    /** The gateway holds the upstream credentials (clients present gateway keys); false = clients bring their own. */
    injectsCredentials: targets.some((t) => t.holdsCredentials),
    /** Upstream attempts one client call may make in total, failover moves and retries together. */
    failoverMaxAttempts: v.FAILOVER_MAX_ATTEMPTS,
    /** Cache-affinity routing among the keys that may serve a call (pipeline/affinity/). */
    cacheAffinity: v.CACHE_AFFINITY,
    publicUrl: v.PUBLIC_URL?.replace(/\/+$/, ''),
    basePath: v.BASE_PATH,
    logLevel: v.LOG_LEVEL,
    /** Upstream connections at most (HTTP/2: each carries up to upstreamHttp2MaxStreams calls). */
    upstreamConnections: v.UPSTREAM_CONNECTIONS ?? defaultUpstreamConnections(v.UPSTREAM_HTTP2, limits),
    upstreamPoolWaitMs: v.UPSTREAM_POOL_WAIT_MS,
    upstreamHttp2: v.UPSTREAM_HTTP2,
    upstreamHttp2MaxStreams: v.UPSTREAM_HTTP2_MAX_STREAMS,
    /** PEM text of UPSTREAM_CA_FILE, read once at start-up. */
    upstreamCa,
    upstreamConnectTimeoutMs: v.UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamHeadersTimeoutMs: v.UPSTREAM_HEADERS_TIMEOUT_MS,
    upstreamBodyTimeoutMs: v.UPSTREAM_BODY_TIMEOUT_MS,
    upstreamKeepAliveTimeoutMs: v.UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    keepAliveTimeoutMs: v.KEEP_ALIVE_TIMEOUT_MS,
    /** listen(2) backlog: a burst of new connections larger than it loses SYNs and waits for retries (1 s, 3 s...). */
    listenBacklog: v.LISTEN_BACKLOG,
    shutdownDelayMs: v.SHUTDOWN_DELAY_MS,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    gatewayApiKeys: v.GATEWAY_API_KEYS ? Object.freeze([...v.GATEWAY_API_KEYS]) : undefined,
    anthropicApiKey: v.ANTHROPIC_API_KEY,
    allowOpenGateway: v.ALLOW_OPEN_GATEWAY,
    /** HMAC key for tenant ids; undefined = a random key per run (chosen at start, with a warning; WORKERS > 1: one for all workers). */
    tenantHashKey: v.TENANT_HASH_KEY,
    /** Host header values batch `results_url` may use; undefined = listen address and loopback names on the listen port. */
    allowedHosts: readonlySet(v.ALLOWED_HOSTS),
    /** Model ids that always get their own metric label. */
    models: readonlySet(v.MODELS),
    coalesce: v.COALESCE,
    coalesceMaxReplayBytes: v.COALESCE_MAX_REPLAY_BYTES,
    coalesceSubscriberBufferBytes: v.COALESCE_SUBSCRIBER_BUFFER_BYTES,
    coalesceLingerMs: v.COALESCE_LINGER_MS,
    /** A shared call nobody listens to any more waits this long for an identical request before it is aborted; 0 = aborted at once. */
    coalesceRejoinMs: v.COALESCE_REJOIN_MS,
    /** Past the window, how long a lingering answer may still serve while the event loop has not been idle since the call ended. */
    coalesceLingerCatchUpMs: v.COALESCE_LINGER_CATCHUP_MS,
    clientWriteStallMs: v.CLIENT_WRITE_STALL_MS,
    maxSseEventBytes: v.MAX_SSE_EVENT_BYTES,
    /** Allowed x-gateway-mode values (others count as `other`); undefined = first MAX_MODES seen. */
    modes: readonlySet(v.MODES === undefined ? undefined : [...v.MODES, 'default']),
    maxModes: v.MAX_MODES,
    maxModels: v.MAX_MODELS,
    pricing,
    redis:
      v.REDIS_URL === undefined && v.REDIS_CLUSTER_NODES === undefined
        ? undefined
        : Object.freeze({
            url: v.REDIS_URL?.[0] ?? (v.REDIS_CLUSTER_NODES?.[0] as string),
            commandTimeoutMs: v.REDIS_COMMAND_TIMEOUT_MS,
            retryMs: v.REDIS_RETRY_MS,
            claimTtlMs: v.REDIS_CLAIM_TTL_MS,
            /** Cluster seed nodes (URLs); undefined = a single server at `url`. */
            clusterNodes: v.REDIS_CLUSTER_NODES ? Object.freeze([...v.REDIS_CLUSTER_NODES]) : undefined,
            tlsCa: v.REDIS_TLS_CA_FILE,
            streamMaxBytes: v.REDIS_STREAM_MAX_BYTES,
            cacheMaxEntryBytes: v.REDIS_CACHE_MAX_ENTRY_BYTES,
          }),
    /**
     * Keys, teams and the spend ledger (issue 26), on when ADMIN_API_KEY is set: database keys are
     * accepted next to GATEWAY_API_KEYS and the admin API listens on its own address.
     */
    governance:
      v.ADMIN_API_KEY === undefined
        ? undefined
        : Object.freeze({
            adminApiKey: v.ADMIN_API_KEY,
            /** The console's read-only credential. */
            viewerKey: v.ADMIN_VIEWER_KEY,
            adminHost: v.ADMIN_HOST,
            adminPort: v.ADMIN_PORT,
            /** PostgreSQL shared by every instance; undefined: PGlite in dataDir. */
            databaseUrl: v.DATABASE_URL,
            dataDir: v.GOVERNANCE_DATA_DIR,
            pollMs: v.GOVERNANCE_POLL_MS,
          }),
    workers: v.WORKERS,
    /**
     * WORKERS > 1 with something to count across the workers: the keys' concurrency slots (governance),
     * and without Redis the budgets, key windows and RATE_LIMIT_RPM windows. The supervisor keeps them
     * for every worker (governance/supervisor-counters.ts), or each worker would count alone and the
     * machine would admit WORKERS times a limit.
     */
    countersInSupervisor: v.WORKERS > 1 && (v.ADMIN_API_KEY !== undefined || (v.RATE_LIMIT_RPM > 0 && v.REDIS_URL === undefined && v.REDIS_CLUSTER_NODES === undefined)),
    /** Requests in progress at most; past it the API answers 529 overloaded_error at once (bounds every per-request structure). */
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
    budgetFailMode: v.BUDGET_FAIL_MODE,
    retry: Object.freeze({
      maxRetries: v.UPSTREAM_RETRIES,
      onOverloaded: v.RETRY_ON_OVERLOADED,
      baseDelayMs: v.RETRY_BASE_DELAY_MS,
      maxDelayMs: v.RETRY_MAX_DELAY_MS,
      budgetPercent: v.RETRY_BUDGET_PERCENT,
    }),
  });
}

/** The configuration the gateway runs with: derived from `configOf`, so its fields are declared once. */
export type Config = ReturnType<typeof configOf>;
