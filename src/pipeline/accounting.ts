import type { GatewayMetrics } from '../observability/metrics.js';
import type { FlightOutcome } from './coalesce/flight.js';
import type { UsageMeter } from '../upstream/usage.js';
import { isAbort } from '../upstream/client.js';

/**
 * Where tokens, cost and upstream-call metrics are written: once per upstream call (by whoever
 * ran it), and once per follower for what it received without a call of its own.
 */

export interface UpstreamCallRecord {
  endpoint: string;
  /** Mode of the request that caused the upstream call (the flight's leader). */
  mode: string;
  /** Bounded label of the requested model ('unknown' when the request named none). */
  model: string;
  /** The model string the request named, if any: a 2xx answer earns it a label (ModelLabels.earn). */
  requestedModel?: string | undefined;
  startedAt: number;
  outcome: FlightOutcome;
  meter: UsageMeter | undefined;
}

function statusLabel(r: UpstreamCallRecord): string {
  if (r.outcome.head === undefined) return isAbort(r.outcome.error) ? 'aborted' : 'error';
  if (r.outcome.error !== undefined) return isAbort(r.outcome.error) ? 'aborted' : 'error';
  if (r.meter?.streamErrorType !== undefined) return 'error';
  if (!r.outcome.complete) return 'aborted';
  return String(r.outcome.head.status);
}

/** The requested model's label, or the answered model's when the request named none. */
function modelLabel(metrics: GatewayMetrics, requested: string | undefined, meter: UsageMeter | undefined): string {
  return metrics.models.known(requested ?? meter?.model);
}

/** Records the call; returns its status label. A 2xx answer earns the model its own label. */
export function recordUpstreamCall(metrics: GatewayMetrics, r: UpstreamCallRecord): string {
  const { endpoint, mode } = r;
  const meter = r.meter;
  meter?.finish();
  const status = statusLabel(r);
  const raw = r.requestedModel ?? meter?.model;
  const model = /^2\d\d$/.test(status) ? metrics.models.earn(raw) : metrics.models.known(raw);
  metrics.apiCalls.inc({ endpoint, mode, model, status });
  metrics.apiDuration.observe({ endpoint, mode, model }, (performance.now() - r.startedAt) / 1000);
  if (meter === undefined) return status;
  if (meter.firstTokenAt !== undefined) metrics.ttft.observe({ mode, model }, (meter.firstTokenAt - r.startedAt) / 1000);
  // Billed whenever the upstream reported usage, even for a stream that failed after it started.
  if (meter.hasUsage) metrics.recordBilled(mode, model, meter.usage);
  return status;
}

/** A follower received the complete, successful answer of someone else's upstream call. */
export function recordCoalescedDelivery(metrics: GatewayMetrics, mode: string, model: string | undefined, meter: UsageMeter): void {
  if (!meter.finish() || meter.streamErrorType !== undefined) return;
  metrics.recordSaved(mode, modelLabel(metrics, model, meter), meter.usage, 'coalesced');
}
