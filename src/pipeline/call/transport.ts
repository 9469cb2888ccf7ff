import type { Readable } from 'node:stream';
import { forwardResponseHeaders, headerValue, type UpstreamHeaders } from '../../upstream/headers.js';
import { unchangedAnswer, type PreparedCall } from '../../upstream/kinds/kind.js';
import type { UpstreamRequest } from '../../upstream/client.js';
import type { Upstream } from '../../upstream/upstreams.js';
import type { FlightSource } from '../coalesce/flight.js';
import type { CallContext, Dispatch, RoutedCall } from './chain.js';
import { asError } from '../../core/errors.js';

/**
 * The innermost dispatch: one request to the upstream the route chose (a `RoutedCall`: the types
 * keep it inside the route), over its pooled undici
 * client. The upstream's adapter builds the provider's request (credentials, signature, path and
 * body for its kind) and turns the provider's answer into the Anthropic one. Deadlines are undici's
 * (connect, headers, body idle), the adapter's credential deadline, and the flight's signal.
 * Every attempt spends one of the call's attempts (attempt-limit.ts) before anything else.
 * Records when the request was sent and when its headers arrived: the clocks of
 * `claude_api_duration_seconds`, TTFT and `gateway_overhead_seconds` start here, not before the
 * gateway's own work.
 */
export function transport(): Dispatch<RoutedCall> {
  // No async frame: the adapter's promise and the client's, each continued once (a throw before either is a rejection, as from an async function).
  return (call, ctx) => {
    try {
      const upstream = call.upstream;
      // The one place an attempt is spent: the route and the retry interceptor only send while one is left.
      if (!call.attempts.take()) throw new Error('transport: the call has no attempt left (FAILOVER_MAX_ATTEMPTS); the route and retry must check `attempts.left`');
      const model = upstream.modelFor(call.model) ?? undefined;
      const adapter = upstream.adapter;
      const outgoing = { method: call.method, path: call.path, endpoint: call.endpoint, headers: call.headers, body: call.body, model };
      // An adapter that never waits (the `anthropic` kind) prepares at once: no promise hop before the send.
      if (adapter.prepareNow !== undefined) return send(upstream, call, ctx, adapter.prepareNow(outgoing));
      return adapter.prepare(outgoing, ctx.stop).then((prepared) => send(upstream, call, ctx, prepared));
    } catch (err) {
      return Promise.reject(asError(err));
    }
  };
}

function send(upstream: Upstream, call: RoutedCall, ctx: CallContext, prepared: PreparedCall): Promise<FlightSource> {
  ctx.facts.sentAt = performance.now();
  const request = { method: call.method, path: prepared.path, headers: prepared.headers, body: prepared.body, signal: ctx.stop };
  if (prepared.translate === unchangedAnswer) {
    // Anthropic's answer as it is: read as it comes, no body stream in between (upstream/direct-body.ts).
    return upstream.client.sendDirect(request).then((direct) => {
      ctx.facts.headersAt = performance.now();
      ctx.facts.framed = direct.delimited;
      // The head was read from undici's raw list: the forwarded pairs are built already, once.
      const head = direct.head;
      return { head: { status: head.status, headers: head.forwarded, eventStream: isEventStream(head.contentType) }, body: direct.body };
    });
  }
  return sendTranslated(upstream, ctx, request, prepared);
}

/** Another provider's answer, turned into the Anthropic one. */
async function sendTranslated(upstream: Upstream, ctx: CallContext, request: UpstreamRequest, prepared: PreparedCall): Promise<FlightSource> {
  const raw = await upstream.client.send(request);
  ctx.facts.headersAt = performance.now();
  ctx.facts.framed = raw.delimited;
  const translated = prepared.translate(raw);
  // Only rewritten answers (Bedrock/Vertex errors, count_tokens) wait; the others take no extra tick.
  const answer = translated instanceof Promise ? await translated : translated;
  return answerOf(answer.status, answer.headers, answer.decoded, answer.body as Readable & AsyncIterable<Buffer>);
}

function answerOf(status: number, headers: UpstreamHeaders, decoded: boolean, body: FlightSource['body']): FlightSource {
  return {
    head: {
      status,
      headers: forwardResponseHeaders(headers, decoded),
      eventStream: isEventStream(headerValue(headers, 'content-type')),
    },
    body,
  };
}

function isEventStream(contentType: string | undefined): boolean {
  return contentType?.startsWith('text/event-stream') === true;
}
