import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import type { Gateway } from '../../src/server.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { tracingConfigured } from '../../src/observability/tracing.js';
import { deferred, until } from '../helpers/deferred.js';
import { LogCapture } from '../helpers/log-capture.js';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_API_KEY, startTestGateway } from '../helpers/stack.js';

describe('OpenTelemetry traces', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const gate = deferred();
  let hold = false;
  let mock: MockUpstream;
  let gateway: Gateway;
  const logs = new LogCapture();

  before(async () => {
    mock = await createMockUpstream({ onRequest: () => (hold ? gate.promise : undefined) });
    gateway = await startTestGateway({ UPSTREAM_URL: mock.url }, logs, { tracer: provider.getTracer('test') });
  });
  after(async () => {
    gate.resolve();
    await gateway.shutdown();
    await mock.close();
    await provider.shutdown();
  });

  const byKind = (kind: SpanKind): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.kind === kind);

  test('a server span per request, a child client span per upstream call, GenAI attributes, trace id in logs', async () => {
    exporter.reset();
    const client = new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0 });
    const message = await client.messages.create({ model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user', content: 'trace me' }] });
    await until(() => byKind(SpanKind.SERVER).length === 1, 5_000, 'the server span to end');
    const [server] = byKind(SpanKind.SERVER);
    const [upstream] = byKind(SpanKind.CLIENT);
    assert.ok(server && upstream);
    assert.equal(server.name, 'POST /v1/messages');
    assert.equal(server.attributes['claude_gateway.coalesce.role'], 'leader');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(upstream.name, 'chat claude-sonnet-5');
    assert.equal(upstream.spanContext().traceId, server.spanContext().traceId);
    assert.equal(upstream.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.equal(upstream.attributes['gen_ai.provider.name'], 'anthropic');
    assert.equal(upstream.attributes['gen_ai.request.model'], 'claude-sonnet-5');
    assert.equal(upstream.attributes['gen_ai.response.id'], message.id);
    assert.equal(upstream.attributes['gen_ai.usage.input_tokens'], message.usage.input_tokens);
    assert.equal(upstream.attributes['gen_ai.usage.output_tokens'], message.usage.output_tokens);

    // The upstream request carries the upstream span as its parent.
    const sent = mock.requests.at(-1)?.headers.traceparent;
    assert.equal(sent, `00-${upstream.spanContext().traceId}-${upstream.spanContext().spanId}-01`);
    const line = logs.records().find((r) => r.msg === 'request' && r.path === '/v1/messages');
    assert.equal(line?.trace_id, server.spanContext().traceId);
  });

  test("an incoming traceparent continues the client's trace; followers link to the shared upstream call", async () => {
    exporter.reset();
    hold = true;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const client = new Anthropic({ apiKey: TEST_API_KEY, baseURL: gateway.url, maxRetries: 0, defaultHeaders: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    const calls = Array.from({ length: 3 }, () => client.messages.stream({ model: 'claude-haiku-5-5', max_tokens: 8, messages: [{ role: 'user', content: 'shared' }] }).finalMessage());
    await until(() => gateway.flights.subscribers() === 3, 5_000, 'three to share');
    hold = false;
    gate.resolve();
    await Promise.all(calls);
    await until(() => byKind(SpanKind.SERVER).length === 3, 5_000, 'three server spans');
    const servers = byKind(SpanKind.SERVER);
    const upstreams = byKind(SpanKind.CLIENT);
    assert.equal(upstreams.length, 1, 'one upstream call, one client span');
    for (const s of servers) assert.equal(s.spanContext().traceId, traceId);
    const followers = servers.filter((s) => s.attributes['claude_gateway.coalesce.role'] === 'follower');
    assert.equal(followers.length, 2);
    for (const f of followers) assert.equal(f.links[0]?.context.spanId, upstreams[0]?.spanContext().spanId);
  });

  test('tracing is on only when OTEL_* variables ask for an exporter', () => {
    assert.equal(tracingConfigured({}), false);
    assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
    assert.equal(tracingConfigured({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), false);
    assert.equal(tracingConfigured({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), false);
  });
});
