import { SpanKind, SpanStatusCode, context, trace, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';

/**
 * OpenTelemetry traces: a SERVER span per request, a CLIENT span per upstream call (child of the
 * request that led the flight), GenAI semantic-convention attributes, the coalescing role, and a
 * link from each follower to the upstream call it shared. Spans are made by hand rather than by
 * auto-instrumentation: two spans per request, no monkey-patching on the hot path, and nothing at
 * all when tracing is off (no tracer, no work).
 */

/** Tracing runs only when the standard OTEL_* variables ask for an exporter. */
export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporters !== undefined && exporters !== '') return exporters !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

export interface TracingHandle {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

/** Starts the OpenTelemetry Node SDK (OTLP exporter and resource from OTEL_* variables). */
export async function startTracing(env: NodeJS.ProcessEnv, version: string): Promise<TracingHandle | undefined> {
  if (!tracingConfigured(env)) return undefined;
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME ?? 'claude-gateway', instrumentations: [] });
  sdk.start();
  return { tracer: trace.getTracer('claude-gateway', version), shutdown: () => sdk.shutdown() };
}

export interface UpstreamSpanInfo {
  endpoint: string;
  model: string;
  serverAddress: string;
  /** The configured upstream's name (bounded by configuration). */
  upstream: string;
  /** The upstream's kind: anthropic, bedrock or vertex. */
  kind: string;
}

/** OpenTelemetry GenAI `gen_ai.provider.name` values by upstream kind. */
const PROVIDER_BY_KIND: Record<string, string> = { anthropic: 'anthropic', bedrock: 'aws.bedrock', vertex: 'gcp.vertex_ai' };

export interface UpstreamSpanResult {
  status: string;
  responseId: string | undefined;
  responseModel: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  errorType: string | undefined;
}

const OPERATION_BY_ENDPOINT: Record<string, string> = { messages: 'chat', count_tokens: 'count_tokens', models: 'models', batches: 'batches' };

/** Thin wrapper so the pipeline never checks whether tracing is on: a disabled one does nothing. */
export class RequestTracing {
  constructor(private readonly tracer: Tracer | undefined) {}

  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  startServer(method: string, route: string, parent: SpanContext | undefined): Span | undefined {
    if (this.tracer === undefined) return undefined;
    const ctx = parent === undefined ? context.active() : trace.setSpanContext(context.active(), parent);
    return this.tracer.startSpan(`${method} ${route}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'http.route': route } }, ctx);
  }

  startUpstream(parent: Span | undefined, info: UpstreamSpanInfo): Span | undefined {
    if (this.tracer === undefined) return undefined;
    const operation = OPERATION_BY_ENDPOINT[info.endpoint] ?? info.endpoint;
    const ctx = parent === undefined ? context.active() : trace.setSpan(context.active(), parent);
    return this.tracer.startSpan(
      `${operation} ${info.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gen_ai.provider.name': PROVIDER_BY_KIND[info.kind] ?? info.kind,
          'gen_ai.system': 'anthropic',
          'gen_ai.operation.name': operation,
          'gen_ai.request.model': info.model,
          'server.address': info.serverAddress,
          'claude_gateway.upstream': info.upstream,
        },
      },
      ctx,
    );
  }

  endUpstream(span: Span | undefined, r: UpstreamSpanResult): void {
    if (span === undefined) return;
    if (/^\d+$/.test(r.status)) span.setAttribute('http.response.status_code', Number(r.status));
    if (r.responseId !== undefined) span.setAttribute('gen_ai.response.id', r.responseId);
    if (r.responseModel !== undefined) span.setAttribute('gen_ai.response.model', r.responseModel);
    if (r.inputTokens !== undefined) span.setAttribute('gen_ai.usage.input_tokens', r.inputTokens);
    if (r.outputTokens !== undefined) span.setAttribute('gen_ai.usage.output_tokens', r.outputTokens);
    if (r.errorType !== undefined) {
      span.setAttribute('error.type', r.errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}

/** `traceparent` for the upstream request, naming the upstream span as the parent. */
export function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1) === 1 ? '01' : '00'}`;
}

/** Parses an incoming W3C `traceparent` header. */
export function parseTraceparent(value: string | string[] | undefined): SpanContext | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const m = v === undefined ? null : /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(v.trim());
  if (m === null) return undefined;
  const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
}

export function linkTo(span: Span): Link {
  return { context: span.spanContext() };
}
