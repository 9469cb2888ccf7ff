import { createHash, createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Stage } from './stage.js';
import { GatewayError } from '../core/errors.js';
import { contextOf } from './context.js';
import { lowerCaseName } from '../upstream/headers.js';
import { setAtMost } from '../core/bounded-map.js';
import type { Principal } from '../governance/model.js';

/** Database keys by the SHA-256 of their secret (governance/key-cache.ts): an in-memory lookup, never a query. */
export interface DatabaseKeys {
  lookup(hash: string): Principal | undefined;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** The Anthropic credential a client sent: `x-api-key` (SDK 0.x) or `Authorization: Bearer` (SDK 1.x). */
export function clientCredential(req: IncomingMessage): string | undefined {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') return auth.slice(7).trim();
  return undefined;
}

/**
 * Every credential upstream will receive, in arrival order: the key of each `x-api-key` and
 * `Authorization: Bearer` header (the same key either way, as SDK 0.x and 1.x send it), and any
 * other `Authorization` value whole. Read from the raw header list because that is what is
 * forwarded (src/upstream/headers.ts): node keeps only the first `authorization` in
 * `req.headers`, but a second one still reaches upstream. Whichever of them upstream uses, two
 * requests share a tenant only if they carry the same list.
 */
export function upstreamCredentials(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = lowerCaseName(rawHeaders[i] as string);
    const value = (rawHeaders[i + 1] as string).trim();
    if (value === '') continue;
    if (name === 'x-api-key') out.push(`key:${value}`);
    else if (name === 'authorization') out.push(/^bearer\s/i.test(value) ? `key:${value.slice(7).trim()}` : `authorization:${value}`);
  }
  return out;
}

/**
 * The `x-api-key` value when it is the request's only credential header and not empty once trimmed
 * (what the SDKs send), else undefined: `upstreamCredentials` then decides. Walks the list without
 * building one: its credential is `key:<value>`, as upstreamCredentials would list it alone.
 */
function loneApiKey(rawHeaders: readonly string[]): string | undefined {
  let key: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const sent = rawHeaders[i] as string;
    if (sent.length === 13 && lowerCaseName(sent) === 'authorization') return undefined;
    if (sent.length !== 9 || lowerCaseName(sent) !== 'x-api-key') continue;
    if (key !== undefined) return undefined;
    key = (rawHeaders[i + 1] as string).trim();
    if (key === '') return undefined;
  }
  return key;
}

/**
 * Pass-through requests carry one upstream credential (the official SDKs and Claude Code send
 * exactly one of `x-api-key` or `Authorization`). With two different ones, which one upstream
 * bills is upstream's choice, so no rate-limit bucket or tenant could be the billed credential's:
 * refused before anything counts or travels. The same key twice is one credential.
 */
function refuseSeveral(credentials: readonly string[]): GatewayError | undefined {
  if (credentials.length < 2) return undefined;
  const first = credentials[0];
  for (let i = 1; i < credentials.length; i++) {
    if (credentials[i] !== first) {
      return new GatewayError(
        'MULTIPLE_CREDENTIALS',
        'The request carries more than one upstream credential: send exactly one x-api-key or Authorization header',
      );
    }
  }
  return undefined;
}

/**
 * Tenant ids: an HMAC-SHA256 of the credential parts, keyed with TENANT_HASH_KEY, so whoever reads
 * the logs or Redis keys cannot test guessed keys against them without the deployment's secret.
 */
export class TenantHasher {
  /**
   * Recent ids by their length-prefixed input: clients send the same credential on every request,
   * and the HMAC was a visible share of the gateway's CPU per request. Bounded (oldest out first);
   * it holds only what the process already holds in every request's headers.
   */
  private readonly recent = new Map<string, string>();

  constructor(
    private readonly key: string,
    private readonly maxRemembered = 10_000,
  ) {}

  /** `id(['credential', 'key:' + key])` by the key alone (no input string built per request); bounded as `recent`. */
  private readonly byApiKey = new Map<string, string>();

  /** The tenant id of a pass-through request whose one credential is this API key: `id(['credential', `key:${key}`])`. */
  ofApiKey(key: string): string {
    const known = this.byApiKey.get(key);
    if (known !== undefined) return known;
    return setAtMost(this.byApiKey, key, this.id(['credential', `key:${key}`]), this.maxRemembered);
  }

  /** Ids remembered now (for tests). */
  get remembered(): number {
    return this.recent.size;
  }

  id(parts: readonly string[]): string {
    // Length-prefixed parts: no value can be crafted to shift into the next one.
    let input = '';
    for (const part of parts) input += `${part.length}:${part}`;
    const known = this.recent.get(input);
    if (known !== undefined) return known;
    return setAtMost(this.recent, input, `t:${createHmac('sha256', this.key).update(input).digest('hex').slice(0, 32)}`, this.maxRemembered);
  }
}

export interface AuthOptions {
  gatewayApiKeys: readonly string[] | undefined;
  /** The gateway holds the upstream credentials (ANTHROPIC_API_KEY, or UPSTREAMS with api_key_env / bedrock / vertex). */
  injectsCredentials: boolean;
  /** What identifies the gateway-held credentials (hashed: the tenant of an open injecting gateway). Secret. */
  injectionIdentity: readonly string[];
  tenants: TenantHasher;
  /** Keys issued by the gateway (ADMIN_API_KEY set): accepted wherever a GATEWAY_API_KEYS key is, and then required. */
  databaseKeys?: DatabaseKeys | undefined;
}

/**
 * Admits clients (when GATEWAY_API_KEYS is set) and names the tenant: the credential upstream
 * bills, which decides who may share a flight, a cached or a lingering answer.
 * - The gateway injects its key: the tenant is the gateway key presented (or the injected key
 *   itself when the gateway runs open).
 * - Pass-through: the tenant is the client's own Anthropic credential (exactly one: see
 *   refuseSeveral), plus the gateway key when one is required. Without any upstream credential
 *   there is no tenant: the request is forwarded (upstream answers 401) but never shares anything.
 * `client` (rate limiting) is whoever presented a key that counts: the gateway key, else the
 * billed credential; none (the client's address) on an open injecting gateway.
 * Gateway keys are compared by SHA-256 digest lookup, so the time taken does not depend on how
 * much of a guessed key matches. Database keys (ADMIN_API_KEY set) are found by the same digest in
 * memory (governance/key-cache.ts) and count as gateway keys everywhere above, their identity being
 * the key id rather than the secret; with them, a gateway key is required even without GATEWAY_API_KEYS.
 */
export function authenticate(options: AuthOptions): Stage {
  const allowed = options.gatewayApiKeys ? new Set(options.gatewayApiKeys.map(sha256Hex)) : undefined;
  const { databaseKeys } = options;
  const injected = options.injectsCredentials ? true : undefined;
  const { tenants } = options;
  const openInjectedTenant = injected === undefined ? undefined : tenants.id(['upstream', ...options.injectionIdentity]);

  return (req, _res, next) => {
    const ctx = contextOf(req);
    if (allowed === undefined && databaseKeys === undefined) {
      if (injected !== undefined) {
        // Open injecting gateway: the client's credential headers never travel and are not billed,
        // so a client could name a fresh one on every request: its rate-limit identity is its address.
        ctx.tenant = openInjectedTenant;
        next();
        return;
      }
      // The usual request (one x-api-key) without a list or an input string; anything else as before.
      const apiKey = loneApiKey(req.rawHeaders);
      if (apiKey !== undefined) {
        const own = tenants.ofApiKey(apiKey);
        ctx.tenant = own;
        ctx.client = own;
        next();
        return;
      }
      const credentials = upstreamCredentials(req.rawHeaders);
      const several = refuseSeveral(credentials);
      if (several !== undefined) {
        next(several);
        return;
      }
      const own = credentials.length === 0 ? undefined : tenants.id(['credential', credentials[0] as string]);
      ctx.tenant = own;
      ctx.client = own;
      next();
      return;
    }
    const header = req.headers['x-gateway-api-key'];
    const presented = typeof header === 'string' && header !== '' ? header : injected !== undefined ? clientCredential(req) : undefined;
    const hash = presented === undefined ? undefined : sha256Hex(presented);
    // A static key, else a database key (unknown, revoked, rotated away and expired keys all miss).
    // The identity of a database key is its id, not its secret: a rotation keeps the tenant.
    let identity: readonly string[] | undefined;
    if (hash !== undefined && allowed?.has(hash) === true) identity = ['gateway', presented as string];
    else {
      const principal = hash === undefined ? undefined : databaseKeys?.lookup(hash);
      if (principal !== undefined) {
        ctx.principal = principal;
        identity = ['database-key', principal.keyId];
      }
    }
    if (identity === undefined) {
      // One message for every miss: it never tells a revoked or expired key from an unknown one.
      const hint =
        injected !== undefined
          ? 'send a gateway API key as the SDK apiKey (x-api-key or Authorization: Bearer) or in x-gateway-api-key'
          : 'send a gateway API key in the x-gateway-api-key header';
      next(new GatewayError('UNAUTHENTICATED', `Missing or invalid gateway API key: ${hint}`));
      return;
    }
    const gatewayKey = tenants.id(identity);
    ctx.client = gatewayKey;
    if (injected !== undefined) ctx.tenant = gatewayKey;
    else {
      const credentials = upstreamCredentials(req.rawHeaders);
      const several = refuseSeveral(credentials);
      if (several !== undefined) {
        next(several);
        return;
      }
      ctx.tenant = credentials.length === 0 ? undefined : tenants.id([...identity, 'credential', credentials[0] as string]);
    }
    next();
  };
}
