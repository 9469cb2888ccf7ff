/**
 * Bounded label values. Client-chosen strings (mode, model) become metric labels only through
 * here: an allowlist when configured, otherwise the first `cap` distinct values, and `other` for
 * everything beyond. Memory and series count are bounded either way.
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
