import { traceparentOf, type RequestTracing } from '../../observability/tracing.js';
import { withoutHeaders } from '../../upstream/header-list.js';
import { observer, type InnerInterceptor } from './chain.js';
import { statusLabel } from '../accounting.js';

const TRACE_HEADERS = new Set(['traceparent', 'tracestate']);

/** Points the upstream `traceparent` at the upstream span (the client's own one is its parent's parent). */
function withTraceparent(headers: readonly string[], traceparent: string): string[] {
  const out = withoutHeaders(headers, TRACE_HEADERS);
  out.push('traceparent', traceparent);
  return out;
}

/**
 * A CLIENT span per upstream call, child of the leading request's span, ended with the call's outcome.
 * An observer (it passes a copy of the call with the span's traceparent inward); with tracing off,
 * not in the chain at all (next itself).
 */
export function trace(tracing: RequestTracing): InnerInterceptor {
  if (!tracing.enabled) return (next) => next;
  return observer((call, ctx) => {
    const span = tracing.startUpstream(call.parentSpan, { endpoint: call.endpoint, model: call.model ?? 'unknown', serverAddress: call.upstream.host, upstream: call.upstream.name, kind: call.upstream.kind });
    if (span === undefined) return call;
    ctx.facts.span = span;
    ctx.finally((outcome) => {
      const meter = ctx.facts.meter;
      const status = statusLabel(outcome, ctx.facts);
      tracing.endUpstream(span, {
        status,
        responseId: meter?.id,
        responseModel: meter?.model,
        inputTokens: meter?.hasUsage === true ? meter.usage.input : undefined,
        outputTokens: meter?.hasUsage === true ? meter.usage.output : undefined,
        errorType: status === 'error' ? (meter?.streamErrorType ?? 'upstream_error') : /^5\d\d$/.test(status) ? status : undefined,
      });
    });
    return { ...call, headers: withTraceparent(call.headers, traceparentOf(span)) };
  });
}
