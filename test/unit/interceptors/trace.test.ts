import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Dispatch } from '../../../src/pipeline/call/chain.js';
import { meter } from '../../../src/pipeline/call/meter.js';
import { trace } from '../../../src/pipeline/call/trace.js';
import { RequestTracing, traceparentOf } from '../../../src/observability/tracing.js';
import { answer, FakeScope, fakeCall, fakeUpstream, scriptedNext, testMetrics, transportError } from '../../helpers/fake-call.js';

const JSON_ANSWER = '{"id":"msg_1","model":"claude-sonnet-5-20260801","usage":{"input_tokens":7,"output_tokens":3}}';
const CLIENT_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace interceptor (the upstream CLIENT span)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracing = new RequestTracing(provider.getTracer('test'));
  after(() => provider.shutdown());

  /** The one CLIENT span ended since the last reset. */
  function clientSpan(): ReadableSpan {
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    assert.equal(spans.length, 1, 'one CLIENT span per upstream call');
    return spans[0] as ReadableSpan;
  }

  /** A call as the route hands it inward (the trace reads its upstream). */
  const routed = (): ReturnType<typeof fakeCall> => fakeCall({ upstream: fakeUpstream('primary') });

  /**
   * The meter outside the trace, as in the chain: the span's usage comes from the real meter. In the
   * chain the route sits between the two (meter is outer, trace inner); here every call the tests send
   * is already routed (fakeCall with an upstream), so the traced dispatch stands in for the route's.
   */
  function metered(next: ReturnType<typeof scriptedNext>['next']): Dispatch {
    return meter(testMetrics(), 1 << 16)(trace(tracing)(next) as unknown as Dispatch);
  }

  test('tracing off: the interceptor is not in the way (next itself), the headers untouched', () => {
    const inner = scriptedNext();
    assert.equal(trace(new RequestTracing(undefined))(inner.next), inner.next);
  });

  test("a child of the request's span, named and attributed for the upstream; the upstream traceparent names it", async () => {
    exporter.reset();
    const parent = tracing.startServer('POST', '/v1/messages', undefined);
    const scope = new FakeScope();
    const inner = scriptedNext(() => answer(200, [], [JSON_ANSWER]));
    const call = fakeCall({
      parentSpan: parent,
      upstream: fakeUpstream('vertex-east', { kind: 'vertex', origin: 'https://us-east5-aiplatform.googleapis.com:8443' }),
      headers: ['traceparent', CLIENT_TRACEPARENT, 'tracestate', 'vendor=1', 'anthropic-version', '2023-06-01'],
    });
    const got = await metered(inner.next)(call, scope);
    assert.ok(scope.facts.span !== undefined, 'the span is a fact for the edge');
    assert.deepEqual(inner.calls[0]?.call.headers, ['anthropic-version', '2023-06-01', 'traceparent', traceparentOf(scope.facts.span)]);
    await scope.finish(got);
    parent?.end();

    const span = clientSpan();
    assert.equal(span.name, 'chat claude-sonnet-5');
    assert.equal(span.parentSpanContext?.spanId, parent?.spanContext().spanId);
    assert.equal(span.spanContext().traceId, parent?.spanContext().traceId);
    assert.deepEqual(span.attributes, {
      'gen_ai.provider.name': 'gcp.vertex_ai',
      'gen_ai.system': 'anthropic',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'claude-sonnet-5',
      'server.address': 'us-east5-aiplatform.googleapis.com:8443',
      'claude_gateway.upstream': 'vertex-east',
      'http.response.status_code': 200,
      'gen_ai.response.id': 'msg_1',
      'gen_ai.response.model': 'claude-sonnet-5-20260801',
      'gen_ai.usage.input_tokens': 7,
      'gen_ai.usage.output_tokens': 3,
    });
    assert.equal(span.status.code, SpanStatusCode.UNSET);
  });

  test('a 5xx answer marks the span an error typed by its status; a 4xx does not', async () => {
    exporter.reset();
    const scope = new FakeScope();
    await scope.finish(await metered(scriptedNext(() => answer(529, [], ['{"type":"error","error":{"type":"overloaded_error","message":"x"}}'])).next)(routed(), scope));
    const span = clientSpan();
    assert.equal(span.attributes['http.response.status_code'], 529);
    assert.equal(span.attributes['error.type'], '529');
    assert.equal(span.status.code, SpanStatusCode.ERROR);

    exporter.reset();
    const client = new FakeScope();
    await client.finish(await metered(scriptedNext(() => answer(400, [], ['{"type":"error","error":{"type":"invalid_request_error","message":"x"}}'])).next)(routed(), client));
    assert.equal(clientSpan().attributes['error.type'], undefined);
    assert.equal(clientSpan().status.code, SpanStatusCode.UNSET);
  });

  test("a stream's error event makes the span an error of that type, with no status code", async () => {
    exporter.reset();
    const scope = new FakeScope();
    const sse = ['event: message_start\ndata: {"type":"message_start","message":{"id":"msg_2","model":"m","usage":{"input_tokens":1,"output_tokens":0}}}\n\n', 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'];
    await scope.finish(await metered(scriptedNext(() => answer(200, [], sse, true)).next)(routed(), scope));
    const span = clientSpan();
    assert.equal(span.attributes['error.type'], 'overloaded_error');
    assert.equal(span.attributes['http.response.status_code'], undefined);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
  });

  test('a call that failed before any answer ends its span as an upstream_error', async () => {
    exporter.reset();
    const scope = new FakeScope();
    const failure = transportError('ECONNREFUSED');
    await assert.rejects(metered(scriptedNext(() => Promise.reject(failure)).next)(fakeCall({ upstream: fakeUpstream('primary') }), scope));
    scope.settle({ head: undefined, error: failure });
    const span = clientSpan();
    assert.equal(span.attributes['error.type'], 'upstream_error');
    assert.equal(span.attributes['gen_ai.provider.name'], 'anthropic');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
  });

  test('a call every client left ends its span without an error', async () => {
    exporter.reset();
    const scope = new FakeScope();
    const got = await metered(scriptedNext(() => answer(200, [], [JSON_ANSWER])).next)(routed(), scope);
    scope.settle({ head: got.head, abandoned: true, complete: false });
    const span = clientSpan();
    assert.equal(span.attributes['error.type'], undefined);
    assert.equal(span.status.code, SpanStatusCode.UNSET);
  });
});
