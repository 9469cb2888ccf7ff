import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { traceparentOf, type RequestTracing } from '../observability/tracing.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { forwardResponseHeaders, headerValue } from '../upstream/headers.js';
import { isAbort, translateUpstreamError, type UpstreamResponse } from '../upstream/client.js';
import type { RetryingSender } from '../upstream/retry.js';
import { UsageMeter } from '../upstream/usage.js';
import type { Flight, FlightSource } from './coalesce/flight.js';
import type { Breakers, BreakerPermit } from './breaker.js';
import { recordCoalescedDelivery, recordUpstreamCall } from './accounting.js';
import type { SharedFlights, SharedPublisher } from './coalesce/shared-flights.js';
import type { CachedAnswer } from './cache/response-cache.js';

/**
 * One upstream call run as a flight: breaker admission, safe retries, the usage meter on the
 * body, and afterwards exactly one outcome for the breaker and one record in the metrics,
 * however many clients shared the flight.
 */

export interface UpstreamCallDeps {
  sender: RetryingSender;
  breakers: Breakers;
  metrics: GatewayMetrics;
  logger: Logger;
  tracing: RequestTracing;
  /** host[:port] of the upstream, for span attributes. */
  serverAddress: string;
  /** Cross-instance coalescing (the SharedFlights port; Redis when REDIS_URL is set), if configured. */
  shared?: SharedFlights | undefined;
}

export interface UpstreamCall {
  method: string;
  path: string;
  headers: string[];
  body: Buffer | IncomingMessage | null;
  endpoint: string;
  /** Mode of the request that leads the flight. */
  mode: string;
  /** Bounded model label; also selects the breaker. */
  model: string;
  /** Rewrites a successful JSON answer before anyone sees it (batch `results_url`); undefined = unchanged. */
  rewriteJson?: ((body: Buffer) => Buffer | undefined) | undefined;
  /** SERVER span of the leading request: parent of the upstream call's span. */
  parentSpan?: Span | undefined;
  /** The coalescing fingerprint, when this call may be shared with other instances. */
  sharedKey?: string | undefined;
  /** Receives the flight's answer when it completed with a 2xx and was kept whole (caching, lingering). */
  onComplete?: ((answer: CachedAnswer) => void) | undefined;
}

/** Answers to rewrite are small JSON objects; a larger one is refused rather than buffered. */
const MAX_REWRITE_BYTES = 8 * 1024 * 1024;

async function readBounded(body: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw new Error(`answer exceeds the ${limit}-byte rewrite limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** Buffers, rewrites and re-frames a JSON answer; the flight then relays the new bytes. */
async function rewritten(answer: UpstreamResponse, rewrite: (body: Buffer) => Buffer | undefined, meter: UsageMeter): Promise<FlightSource> {
  let bytes: Buffer;
  try {
    bytes = await readBounded(answer.body as AsyncIterable<Buffer>, MAX_REWRITE_BYTES);
  } catch (err) {
    throw translateUpstreamError(err, 'body');
  }
  const out = rewrite(bytes) ?? bytes;
  return {
    head: { status: answer.status, headers: [...forwardResponseHeaders(answer.headers, true), ['content-length', String(out.length)]], eventStream: false },
    body: [out],
    onChunk: (chunk) => meter.push(chunk),
  };
}

/** Publishes what the flight relays, so followers on other instances receive the same bytes. */
function published(source: FlightSource, publisher: SharedPublisher): FlightSource {
  publisher.head(source.head);
  const onChunk = source.onChunk;
  return {
    ...source,
    onChunk: (chunk) => {
      onChunk?.(chunk);
      publisher.chunk(chunk);
    },
  };
}

/**
 * The leader keeps the call running while followers on other instances listen, exactly as it does
 * for its own clients: the flight is held, and when its last local client leaves (or the remote
 * listeners drop to none) the publisher is asked, atomically with releasing the claim, whether
 * anyone still listens. Returns the release, to call once the flight is over.
 */
function keepRunningWhileListened(flight: Flight, publisher: SharedPublisher): () => void {
  const release = flight.hold();
  let deciding = false;
  const decide = async (): Promise<void> => {
    if (deciding || flight.subscriberCount > 0) return;
    deciding = true;
    const listened = await publisher.stillListened();
    deciding = false;
    if (!listened && flight.subscriberCount === 0) release();
  };
  flight.onIdle = () => void decide();
  publisher.watchListeners((listening) => {
    if (!listening) void decide();
  });
  return release;
}

/** Usage meters of flights, for followers' savings; entries go with their flight. */
const meters = new WeakMap<Flight, UsageMeter>();

/** The meter of a flight that has run (undefined before its head arrived). */
export function meterOf(flight: Flight): UsageMeter | undefined {
  return meters.get(flight);
}

/** Upstream spans of flights, so followers can link to the call they shared. */
const spans = new WeakMap<Flight, Span>();

export function upstreamSpanOf(flight: Flight): Span | undefined {
  return spans.get(flight);
}

/** Points the upstream `traceparent` at the upstream span (the client's own one is its parent's parent). */
function withTraceparent(headers: string[], span: Span | undefined): string[] {
  if (span === undefined) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name !== 'traceparent' && name !== 'tracestate') out.push(name, headers[i + 1] as string);
  }
  out.push('traceparent', traceparentOf(span));
  return out;
}

function toSource(answer: UpstreamResponse, meter: UsageMeter): FlightSource {
  return {
    head: {
      status: answer.status,
      headers: forwardResponseHeaders(answer.headers, answer.decoded),
      eventStream: headerValue(answer.headers, 'content-type')?.startsWith('text/event-stream') === true,
    },
    body: answer.body as AsyncIterable<Buffer>,
    onChunk: (chunk) => meter.push(chunk),
  };
}

function meterFor(contentType: string | undefined): UsageMeter {
  const type = contentType ?? '';
  return new UsageMeter(type.startsWith('text/event-stream'), type.includes('json'));
}

/** Runs `flight` as `call`. Resolves once the flight is over; never rejects. */
export async function runUpstreamCall(deps: UpstreamCallDeps, flight: Flight, call: UpstreamCall): Promise<void> {
  const startedAt = performance.now();
  let meter: UsageMeter | undefined;
  let permit: BreakerPermit | undefined;
  let span: Span | undefined;
  // Written inside the flight's start callback, read after it.
  const shared: { publisher: SharedPublisher | undefined; remoteFollower: boolean; release: (() => void) | undefined } = { publisher: undefined, remoteFollower: false, release: undefined };
  const result = await flight.run(async (signal) => {
    if (deps.shared !== undefined && call.sharedKey !== undefined) {
      const joined = await deps.shared.join(call.sharedKey, signal);
      if (joined.role === 'follower') {
        // Another instance calls upstream; this flight relays its answer.
        shared.remoteFollower = true;
        const followed = joined.answer;
        const type = followed.head.headers.find(([n]) => n === 'content-type')?.[1];
        const remoteMeter = meterFor(typeof type === 'string' ? type : undefined);
        meter = remoteMeter;
        meters.set(flight, remoteMeter);
        return { ...followed, onChunk: (chunk: Buffer) => remoteMeter.push(chunk) };
      }
      if (joined.role === 'leader') {
        shared.publisher = joined.publisher;
        shared.release = keepRunningWhileListened(flight, joined.publisher);
      }
    }
    try {
      permit = deps.breakers.admit(call.model);
    } catch (err) {
      shared.publisher?.fail(err);
      throw err;
    }
    span = deps.tracing.startUpstream(call.parentSpan, { endpoint: call.endpoint, model: call.model, serverAddress: deps.serverAddress });
    if (span !== undefined) spans.set(flight, span);
    let answer: UpstreamResponse;
    try {
      answer = await deps.sender.send({ method: call.method, path: call.path, headers: withTraceparent(call.headers, span), body: call.body, signal });
    } catch (err) {
      if (isAbort(err)) permit.succeed();
      else permit.fail(err);
      shared.publisher?.fail(isAbort(err) ? new Error('aborted') : err);
      throw err;
    }
    // 5xx and 529 are upstream failures; 4xx and 429 are answers about the request or the key.
    if (answer.status >= 500) permit.fail(new Error(`upstream answered ${answer.status}`));
    meter = meterFor(headerValue(answer.headers, 'content-type'));
    meters.set(flight, meter);
    const rewrite = call.rewriteJson;
    const source =
      rewrite !== undefined && answer.status < 300 && headerValue(answer.headers, 'content-type')?.includes('json') === true
        ? await rewritten(answer, rewrite, meter)
        : toSource(answer, meter);
    return shared.publisher === undefined ? source : published(source, shared.publisher);
  });

  if (shared.publisher !== undefined) {
    if (result.complete && result.error === undefined) shared.publisher.end();
    else shared.publisher.fail(result.error);
    shared.release?.();
  }
  if (shared.remoteFollower) {
    // The local leader also got its answer without an upstream call of this instance.
    if (result.complete && meter !== undefined && (result.head?.status ?? 500) < 300) recordCoalescedDelivery(deps.metrics, call.mode, call.model, meter);
    return;
  }
  if (permit === undefined) return; // refused by an open breaker: no upstream call happened
  if (result.error !== undefined && !isAbort(result.error)) permit.fail(result.error);
  else if (meter?.streamErrorType !== undefined) permit.fail(new Error(`upstream stream error: ${meter.streamErrorType}`));
  else permit.succeed();

  if (call.onComplete !== undefined && result.complete && result.error === undefined && meter?.streamErrorType === undefined) {
    const replay = flight.finishedReplay();
    if (replay !== undefined && replay.head.status >= 200 && replay.head.status < 300) {
      meter?.finish();
      const usage = meter?.hasUsage === true ? { ...meter.usage } : undefined;
      call.onComplete({ head: replay.head, body: replay.body, bytes: replay.body.reduce((n, c) => n + c.length, 0), usage, model: meter?.model });
    }
  }
  const status = recordUpstreamCall(deps.metrics, { endpoint: call.endpoint, mode: call.mode, model: call.model, startedAt, outcome: result, meter });
  deps.tracing.endUpstream(span, {
    status,
    responseId: meter?.id,
    responseModel: meter?.model,
    inputTokens: meter?.hasUsage === true ? meter.usage.input : undefined,
    outputTokens: meter?.hasUsage === true ? meter.usage.output : undefined,
    errorType: status === 'error' ? (meter?.streamErrorType ?? 'upstream_error') : /^5\d\d$/.test(status) ? status : undefined,
  });
  if (result.error !== undefined && !isAbort(result.error) && result.head !== undefined) {
    const err = translateUpstreamError(result.error, 'body');
    deps.logger.warn({ code: err.code, path: call.path.split('?', 1)[0], subscribers: result.subscribers }, err.message);
  }
}
