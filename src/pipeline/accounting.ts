import type { GatewayMetrics } from '../observability/metrics.js';
import type { TokenUsage } from '../core/token-usage.js';
import type { UsageMeter } from '../upstream/usage.js';
import { isAbort } from '../upstream/client.js';
import type { CallOutcome } from './coalesce/flight.js';
import type { UpstreamCall } from './call/chain.js';
import type { CallFacts } from './call/facts.js';

/**
 * The one module where tokens, cost and upstream-call metrics are written: once per upstream call
 * (by the instance that made it), and once per client for what it received without a call of its
 * own (followers, remote followers, cache hits).
 */

/** The model label of a call: the requested model, or the answered one when the request named none. Labels are earned (observability/labels.ts). */
export function modelLabel(metrics: GatewayMetrics, requested: string | undefined, meter: UsageMeter | undefined): string {
  return metrics.models.known(requested ?? meter?.model);
}

/** Status label of an upstream call: the HTTP status, or `error` / `aborted` when there is none to tell. */
export function statusLabel(outcome: CallOutcome, facts: CallFacts): string {
  if (outcome.abandoned || (outcome.error !== undefined && isAbort(outcome.error))) return 'aborted';
  if (outcome.head === undefined || outcome.error !== undefined) return 'error';
  if (facts.meter?.streamErrorType !== undefined) return 'error';
  return String(outcome.head.status);
}

/**
 * Records the call at its end. An upstream request that was never sent (an open breaker) is not
 * an upstream call; an answer relayed from another instance's call is a delivery, not a bill.
 * Durations run from the upstream request sent (not before the gateway's own work).
 */
export function recordCall(metrics: GatewayMetrics, call: UpstreamCall, facts: CallFacts, outcome: CallOutcome, endedAt = performance.now()): void {
  const meter = facts.meter;
  meter?.finish();
  if (facts.origin === 'remote') {
    if (outcome.complete && (outcome.head?.status ?? 500) < 300 && meter !== undefined) recordDelivery(metrics, call.mode, call.model, meter, 'coalesced');
    return;
  }
  const sentAt = facts.sentAt;
  if (sentAt === undefined) return;
  const { endpoint } = call;
  const status = statusLabel(outcome, facts);
  // A 2xx answer earns the requested model and the request's mode their own labels; junk upstream refused stays `other`.
  const raw = call.model ?? meter?.model;
  // Statuses are HTTP statuses (three digits), `error` or `aborted`.
  const answered = status.length === 3 && status.charCodeAt(0) === 50; /* '2' */
  const model = answered ? metrics.models.earn(raw) : metrics.models.known(raw);
  const mode = answered ? metrics.modes.earn(call.mode) : metrics.modes.known(call.mode);
  const series = metrics.modelSeries(mode, model, facts.upstream ?? 'none');
  const calls = series.endpoint(endpoint);
  calls.call(status);
  calls.duration((endedAt - sentAt) / 1000);
  if (meter === undefined) return;
  if (meter.firstTokenAt !== undefined) series.ttft((meter.firstTokenAt - sentAt) / 1000);
  // Billed whenever the upstream reported usage, even for a stream that failed after it started.
  if (meter.hasUsage) series.billed(meter.usage);
}

/** An attempt the route failed over from: an upstream call of its own (it reached the upstream), never billed. */
export function recordAttempt(metrics: GatewayMetrics, call: UpstreamCall, upstream: string, status: string): void {
  metrics.apiCalls.inc({ endpoint: call.endpoint, mode: metrics.modes.known(call.mode), model: metrics.models.known(call.model), status, upstream });
}

/** A client received the complete, successful answer of someone else's upstream call (its mode earns a label: `mode` is the raw name). */
export function recordDelivery(metrics: GatewayMetrics, mode: string, requested: string | undefined, meter: UsageMeter, source: 'coalesced' | 'cache'): void {
  if (!meter.finish() || meter.streamErrorType !== undefined) return;
  metrics.recordSaved(metrics.modes.earn(mode), modelLabel(metrics, requested, meter), meter.usage, source, requested ?? meter.model);
}

/** A kept answer (cache hit, lingering answer: complete 2xx only) delivered again; `mode` is the raw name, which earns a label. */
export function recordReuse(metrics: GatewayMetrics, mode: string, requested: string | undefined, answer: { usage: TokenUsage | undefined; model: string | undefined }, source: 'coalesced' | 'cache'): void {
  if (answer.usage === undefined) return;
  metrics.recordSaved(metrics.modes.earn(mode), metrics.models.known(requested ?? answer.model), answer.usage, source, requested ?? answer.model);
}
