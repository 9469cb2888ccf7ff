/** Mode names the gateway itself gives (no header; a malformed one): always their own label. */
const GATEWAY_MODES: ReadonlySet<string> = new Set(['default', 'invalid']);

/**
 * The `mode` label. A client names any mode it likes, on any request, authenticated or not, so a
 * mode name earns its own label the way a model does: listed in MODES (then nothing else does), or
 * carried by a request upstream answered with a 2xx (`earn`, at most `cap` such names, never
 * evicted). Until then it counts as `other`: requests refused at the edge (401, bad paths), system
 * routes and answers upstream refused can never take a slot. `default` and `invalid` are the
 * gateway's own names and always count as themselves (without MODES).
 */
export class ModeLabels {
  private readonly earned = new Set<string>();

  constructor(
    private readonly allow: ReadonlySet<string> | undefined,
    private readonly cap: number,
  ) {}

  /** The label of `raw` (a mode name as http/context.ts validated it) now: itself once allowed or earned, `other` before. */
  known(raw: string): string {
    if (this.allow !== undefined) return this.allow.has(raw) ? raw : 'other';
    return this.earned.has(raw) || GATEWAY_MODES.has(raw) ? raw : 'other';
  }

  /** Called when upstream answered a request in mode `raw` with a 2xx: from now on it has its own label (within the cap). */
  earn(raw: string): string {
    if (this.allow === undefined && !this.earned.has(raw) && this.earned.size < this.cap && !GATEWAY_MODES.has(raw)) this.earned.add(raw);
    return this.known(raw);
  }
}

/** Model ids as the API names them; anything else never becomes a label. */
const MODEL_ID = /^[A-Za-z0-9._:@/-]{1,128}$/;

/**
 * The `model` label. A client names any model it likes, so a requested model string earns its
 * own label only when it is vouched for: listed in MODELS, priced by exact id in the price table
 * (PRICING_JSON), or answered with a 2xx by upstream (`earn`, at most `cap` such models). Earned
 * labels are never evicted; junk that upstream refused counts as `other` and cannot take a slot.
 */
export class ModelLabels {
  private readonly earned = new Set<string>();
  /** Model strings found vouched for, so the check runs once per model: MODELS and priced ids only, so bounded by configuration. */
  private readonly vouchedSeen = new Set<string>();

  constructor(
    private readonly vouched: (model: string) => boolean,
    private readonly cap: number,
  ) {}

  /** The label of a model already vouched for or earned; `other` for any other; `unknown` for none. */
  known(raw: string | undefined): string {
    if (raw === undefined || raw === '') return 'unknown';
    if (this.earned.has(raw) || this.vouchedSeen.has(raw)) return raw;
    if (MODEL_ID.test(raw) && this.vouched(raw)) {
      this.vouchedSeen.add(raw);
      return raw;
    }
    return 'other';
  }

  /** Called when upstream answered a call for `raw` with a 2xx: from now on it has its own label (within the cap). */
  earn(raw: string | undefined): string {
    if (raw !== undefined && !this.earned.has(raw) && !this.vouchedSeen.has(raw) && this.earned.size < this.cap && MODEL_ID.test(raw) && !this.vouched(raw)) this.earned.add(raw);
    return this.known(raw);
  }
}

/** Route label: a fixed set, so unknown paths can never mint series. */
export function routeLabel(path: string): string {
  // Once per request: no array, and no new string unless there is a query.
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  if (bare === '/v1/messages') return '/v1/messages';
  if (bare === '/v1/messages/count_tokens') return '/v1/messages/count_tokens';
  if (bare.startsWith('/v1/messages/batches')) return '/v1/messages/batches';
  if (bare === '/v1/models' || bare.startsWith('/v1/models/')) return '/v1/models';
  if (bare.startsWith('/v1/files')) return '/v1/files';
  if (bare === '/healthz' || bare === '/readyz' || bare === '/metrics') return bare;
  return 'other';
}

/** Endpoint label of upstream calls. */
export function endpointLabel(path: string): string {
  switch (routeLabel(path)) {
    case '/v1/messages':
      return 'messages';
    case '/v1/messages/count_tokens':
      return 'count_tokens';
    case '/v1/messages/batches':
      return 'batches';
    case '/v1/models':
      return 'models';
    case '/v1/files':
      return 'files';
    default:
      return 'other';
  }
}
