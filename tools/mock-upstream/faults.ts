import type { IncomingHttpHeaders } from 'node:http';

/** Bedrock-only stream faults, per request (`x-mock-bedrock-fault`), striking at the sixth event. */
export type BedrockStreamFault = 'cut-frame' | 'bad-crc' | 'exception';
export const BEDROCK_STREAM_FAULTS: readonly BedrockStreamFault[] = ['cut-frame', 'bad-crc', 'exception'];

/**
 * Failure injection: per request through `x-mock-*` headers (which a gateway forwards untouched to an
 * `anthropic` upstream; its Bedrock and Vertex adapters forward no such header), or globally for the
 * next N API requests. A header value wins over the global plan, field by field.
 *
 * - reset: the socket is destroyed before any response.
 * - stall: no headers are ever sent; the request is held until the client leaves or the mock closes.
 * - stall-body: headers and the first event (streams) or first byte (JSON) are sent, then nothing.
 * - midstream-error: streams only: message_start and a few deltas, then an `error` event
 *   (overloaded_error), then the end of the body.
 * - midstream-reset: streams: a few events, then the socket is destroyed; JSON: headers and half
 *   the body, then the socket is destroyed.
 * - gzip: the body is gzip-compressed with `content-encoding: gzip`, whatever the client accepts.
 * - first-event-error: streams only: 200 and SSE headers, then an `error` event (overloaded_error)
 *   as the first event, then the end of the body (before any byte of an answer; plain calls are unaffected).
 */
export type FaultKind = 'reset' | 'stall' | 'stall-body' | 'midstream-error' | 'midstream-reset' | 'gzip' | 'first-event-error';

export const FAULT_KINDS: readonly FaultKind[] = ['reset', 'stall', 'stall-body', 'midstream-error', 'midstream-reset', 'gzip', 'first-event-error'];

export interface FaultPlan {
  /** Answer with this status (400..599) and an Anthropic-shaped error body of the matching type. */
  status?: number;
  kind?: FaultKind;
  /** Global plans only: apply to the next N API requests, then clear (default: until cleared). */
  count?: number;
  /** retry-after on the injected error (default "1" for 429, 503 and 529). */
  retryAfter?: string;
  /** Overrides the mock's latency before response headers. */
  latencyMs?: number;
  /** Overrides the mock's delay between SSE events. */
  eventIntervalMs?: number;
  /**
   * Bedrock mode only, global plans only: the event-stream fault (`x-mock-bedrock-fault` per request).
   * A gateway's Bedrock adapter forwards no client header, so a test behind a gateway sets it here.
   */
  bedrockFault?: BedrockStreamFault;
}

/** The per-request headers, by field. */
export const FAULT_HEADERS = {
  status: 'x-mock-status',
  kind: 'x-mock-fault',
  retryAfter: 'x-mock-retry-after',
  latencyMs: 'x-mock-latency-ms',
  eventIntervalMs: 'x-mock-event-interval-ms',
} as const;

function isFaultKind(value: unknown): value is FaultKind {
  return typeof value === 'string' && (FAULT_KINDS as readonly string[]).includes(value);
}

function isErrorStatus(value: number): boolean {
  return Number.isInteger(value) && value >= 400 && value <= 599;
}

function isDelay(value: number): boolean {
  return Number.isFinite(value) && value >= 0 && value <= 600_000;
}

function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads the `x-mock-*` headers; malformed values are ignored. */
export function faultFromHeaders(headers: IncomingHttpHeaders): FaultPlan {
  const plan: FaultPlan = {};
  const status = Number(one(headers, FAULT_HEADERS.status) ?? NaN);
  if (isErrorStatus(status)) plan.status = status;
  const kind = one(headers, FAULT_HEADERS.kind)?.trim().toLowerCase();
  if (isFaultKind(kind)) plan.kind = kind;
  const retryAfter = one(headers, FAULT_HEADERS.retryAfter);
  if (retryAfter !== undefined) plan.retryAfter = retryAfter;
  const latency = Number(one(headers, FAULT_HEADERS.latencyMs) ?? NaN);
  if (isDelay(latency)) plan.latencyMs = latency;
  const interval = Number(one(headers, FAULT_HEADERS.eventIntervalMs) ?? NaN);
  if (isDelay(interval)) plan.eventIntervalMs = interval;
  return plan;
}

/** Validates a plan posted to /_mock/faults: the plan, null (clear), or an error message. */
export function validateFaultPlan(value: unknown): FaultPlan | null | string {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return 'fault plan must be an object or null';
  const v = value as Record<string, unknown>;
  const plan: FaultPlan = {};
  if (v.status !== undefined) {
    if (typeof v.status !== 'number' || !isErrorStatus(v.status)) return 'status must be an integer from 400 to 599';
    plan.status = v.status;
  }
  if (v.kind !== undefined) {
    if (!isFaultKind(v.kind)) return `kind must be one of ${FAULT_KINDS.join('|')}`;
    plan.kind = v.kind;
  }
  if (v.count !== undefined) {
    if (typeof v.count !== 'number' || !Number.isInteger(v.count) || v.count < 1) return 'count must be a positive integer';
    plan.count = v.count;
  }
  if (v.retryAfter !== undefined) {
    if (typeof v.retryAfter !== 'string' && typeof v.retryAfter !== 'number') return 'retryAfter must be a string or a number';
    plan.retryAfter = String(v.retryAfter);
  }
  if (v.bedrockFault !== undefined) {
    if (!(BEDROCK_STREAM_FAULTS as readonly unknown[]).includes(v.bedrockFault)) return `bedrockFault must be one of ${BEDROCK_STREAM_FAULTS.join('|')}`;
    plan.bedrockFault = v.bedrockFault as BedrockStreamFault;
  }
  for (const field of ['latencyMs', 'eventIntervalMs'] as const) {
    const ms = v[field];
    if (ms === undefined) continue;
    if (typeof ms !== 'number' || !isDelay(ms)) return `${field} must be a number of milliseconds from 0 to 600000`;
    plan[field] = ms;
  }
  return plan;
}

/** Holds the global plan and how many more requests it applies to. */
export class FaultSchedule {
  private plan: FaultPlan | null = null;
  private remaining = Infinity;

  set(plan: FaultPlan | null): void {
    this.plan = plan === null ? null : { ...plan };
    this.remaining = plan?.count ?? Infinity;
  }

  current(): FaultPlan | null {
    return this.plan === null ? null : { ...this.plan };
  }

  /** The plan for the next API request; consumes one of `count`. */
  next(): FaultPlan {
    if (this.plan === null) return {};
    const { count: _count, ...plan } = this.plan;
    this.remaining--;
    if (this.remaining <= 0) this.set(null);
    return plan;
  }
}
