import type { IncomingHttpHeaders } from 'node:http';

/** Failure injection: per request through `x-mock-*` headers, or globally for the next N requests. */
export type FaultKind = 'reset' | 'stall' | 'stall-body' | 'midstream-error' | 'midstream-reset' | 'gzip';

export const FAULT_KINDS: readonly FaultKind[] = ['reset', 'stall', 'stall-body', 'midstream-error', 'midstream-reset', 'gzip'];

export interface FaultPlan {
  /** Answer with this status and an Anthropic-shaped error body. */
  status?: number;
  kind?: FaultKind;
  /** Global plans only: apply to the next N API requests, then clear. */
  count?: number;
  retryAfter?: string;
  latencyMs?: number;
  eventIntervalMs?: number;
}

function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function nonNegative(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export function faultFromHeaders(headers: IncomingHttpHeaders): FaultPlan {
  const plan: FaultPlan = {};
  const status = nonNegative(one(headers, 'x-mock-status'));
  if (status !== undefined && status >= 400 && status <= 599) plan.status = status;
  const kind = one(headers, 'x-mock-fault');
  if (kind !== undefined && (FAULT_KINDS as readonly string[]).includes(kind)) plan.kind = kind as FaultKind;
  const retryAfter = one(headers, 'x-mock-retry-after');
  if (retryAfter !== undefined) plan.retryAfter = retryAfter;
  const latency = nonNegative(one(headers, 'x-mock-latency-ms'));
  if (latency !== undefined) plan.latencyMs = latency;
  const interval = nonNegative(one(headers, 'x-mock-event-interval-ms'));
  if (interval !== undefined) plan.eventIntervalMs = interval;
  return plan;
}

export function validateFaultPlan(value: unknown): FaultPlan | null | string {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return 'fault plan must be an object or null';
  const v = value as Record<string, unknown>;
  const plan: FaultPlan = {};
  if (v.status !== undefined) {
    if (typeof v.status !== 'number' || v.status < 400 || v.status > 599) return 'status must be 400..599';
    plan.status = v.status;
  }
  if (v.kind !== undefined) {
    if (typeof v.kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(v.kind)) return `kind must be one of ${FAULT_KINDS.join('|')}`;
    plan.kind = v.kind as FaultKind;
  }
  if (v.count !== undefined) {
    if (typeof v.count !== 'number' || !Number.isInteger(v.count) || v.count < 1) return 'count must be a positive integer';
    plan.count = v.count;
  }
  if (typeof v.retryAfter === 'string' || typeof v.retryAfter === 'number') plan.retryAfter = String(v.retryAfter);
  if (typeof v.latencyMs === 'number') plan.latencyMs = v.latencyMs;
  if (typeof v.eventIntervalMs === 'number') plan.eventIntervalMs = v.eventIntervalMs;
  return plan;
}

/** Holds the global plan and its remaining count. */
export class FaultSchedule {
  private plan: FaultPlan | null = null;
  private remaining = Infinity;

  set(plan: FaultPlan | null): void {
    this.plan = plan;
    this.remaining = plan?.count ?? Infinity;
  }

  /** The plan for the next API request (consumes one of `count`). */
  next(): FaultPlan {
    if (this.plan === null) return {};
    const plan = this.plan;
    this.remaining--;
    if (this.remaining <= 0) this.set(null);
    return plan;
  }
}
