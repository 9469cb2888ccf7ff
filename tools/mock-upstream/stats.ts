/** What the mock counts. Every map is bounded, so a long load test cannot grow it without limit. */

export interface BilledUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface MockStats {
  /** API requests received (control endpoints /_mock/* excluded). */
  requests: number;
  /** Requests per "METHOD /path" (no query), e.g. "POST /v1/messages". Past 1,000 keys, new ones count under "METHOD (other)". */
  byPath: Record<string, number>;
  /** Usage the mock billed for /v1/messages: final usage of completed calls, the last usage a failed stream reported. */
  usage: BilledUsage;
  /** The same, per requested model (past 1,000 models, new ones count under "(other)"). */
  usageByModel: Record<string, BilledUsage>;
  /** TCP connections accepted (HTTP/1.1 and HTTP/2 alike). */
  connections: number;
  /** Of those, connections that spoke HTTP/2 (prior-knowledge h2c; only with the mock's http2 option). */
  http2Connections: number;
  /** API requests being answered right now (from receipt until the response closes). */
  activeRequests: number;
  /** The most API requests in progress at once since start or the last reset. */
  peakActiveRequests: number;
  /** SSE answers open right now (headers sent, response not yet closed): streams live at once. */
  openStreams: number;
  /** The most SSE answers open at once since start or the last reset. */
  peakOpenStreams: number;
}

const MAX_KEYS = 1_000;
const USAGE_FIELDS = ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;

export function emptyUsage(): BilledUsage {
  return { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

function boundedKey(map: Record<string, unknown>, key: string, overflow: string): string {
  return key in map || Object.keys(map).length < MAX_KEYS ? key : overflow;
}

export class StatsRecorder {
  private stats = StatsRecorder.empty();

  private static empty(): MockStats {
    return {
      requests: 0,
      byPath: Object.create(null) as Record<string, number>,
      usage: emptyUsage(),
      usageByModel: Object.create(null) as Record<string, BilledUsage>,
      connections: 0,
      http2Connections: 0,
      activeRequests: 0,
      peakActiveRequests: 0,
      openStreams: 0,
      peakOpenStreams: 0,
    };
  }

  /** An API request arrived; `requestClosed` must follow once its response closed. */
  requestOpened(): void {
    this.stats.activeRequests++;
    this.stats.peakActiveRequests = Math.max(this.stats.peakActiveRequests, this.stats.activeRequests);
  }

  requestClosed(): void {
    this.stats.activeRequests--;
  }

  /** An SSE answer sent its headers; `streamClosed` must follow once its response closed. */
  streamOpened(): void {
    this.stats.openStreams++;
    this.stats.peakOpenStreams = Math.max(this.stats.peakOpenStreams, this.stats.openStreams);
  }

  streamClosed(): void {
    this.stats.openStreams--;
  }

  http2Connection(): void {
    this.stats.http2Connections++;
  }

  request(method: string, pathname: string): void {
    this.stats.requests++;
    const key = boundedKey(this.stats.byPath, `${method} ${pathname}`, `${method} (other)`);
    this.stats.byPath[key] = (this.stats.byPath[key] ?? 0) + 1;
  }

  connection(): void {
    this.stats.connections++;
  }

  bill(model: string, usage: BilledUsage): void {
    const key = boundedKey(this.stats.usageByModel, model, '(other)');
    const perModel = (this.stats.usageByModel[key] ??= emptyUsage());
    for (const field of USAGE_FIELDS) {
      this.stats.usage[field] += usage[field];
      perModel[field] += usage[field];
    }
  }

  /** A copy: callers can keep it across later requests. */
  snapshot(): MockStats {
    return structuredClone(this.stats);
  }

  /** Zeroes the counters; what is open right now stays counted (it will close later), peaks restart from it. */
  reset(): void {
    const { activeRequests, openStreams } = this.stats;
    this.stats = { ...StatsRecorder.empty(), activeRequests, peakActiveRequests: activeRequests, openStreams, peakOpenStreams: openStreams };
  }
}
