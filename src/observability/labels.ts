/**
 * Bounded label values for client-chosen strings (the mode): an allowlist when configured,
 * otherwise the first `cap` distinct values, and `other` for everything beyond. Values are only
 * ever added, never evicted, so later junk cannot push out a value already counted. Memory and
 * series count are bounded either way.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly allow: ReadonlySet<string> | undefined,
    private readonly cap: number,
    private readonly fallback = 'other',
  ) {}

  value(raw: string | undefined): string {
    if (raw === undefined || raw === '') return 'unknown';
    if (this.allow !== undefined) return this.allow.has(raw) ? raw : this.fallback;
    if (this.seen.has(raw)) return raw;
    if (this.seen.size >= this.cap) return this.fallback;
    this.seen.add(raw);
    return raw;
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

  constructor(
    private readonly vouched: (model: string) => boolean,
    private readonly cap: number,
  ) {}

  /** The label of a model already vouched for or earned; `other` for any other; `unknown` for none. */
  known(raw: string | undefined): string {
    if (raw === undefined || raw === '') return 'unknown';
    if (this.earned.has(raw) || (MODEL_ID.test(raw) && this.vouched(raw))) return raw;
    return 'other';
  }

  /** Called when upstream answered a call for `raw` with a 2xx: from now on it has its own label (within the cap). */
  earn(raw: string | undefined): string {
    if (raw !== undefined && !this.earned.has(raw) && this.earned.size < this.cap && MODEL_ID.test(raw) && !this.vouched(raw)) this.earned.add(raw);
    return this.known(raw);
  }
}

/** Route label: a fixed set, so unknown paths can never mint series. */
export function routeLabel(path: string): string {
  const bare = path.split('?', 1)[0] ?? path;
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
