import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../src/core/errors.js';
import { meter } from '../../../src/pipeline/call/meter.js';
import { answer, FakeScope, fakeCall, metricValue, scriptedNext, testMetrics } from '../../helpers/fake-call.js';

const JSON_ANSWER = '{"id":"msg_1","model":"claude-sonnet-5","usage":{"input_tokens":7,"output_tokens":3}}';

describe('meter interceptor (usage, accounting)', () => {
  test('reads usage from the body as it passes and records the call once it ended, under the upstream that answered', async () => {
    const metrics = testMetrics();
    const scope = new FakeScope();
    const inner = scriptedNext((_call, ctx) => {
      ctx.facts.sentAt = performance.now();
      ctx.facts.upstream = 'primary';
      return answer(200, [], [JSON_ANSWER.slice(0, 20), JSON_ANSWER.slice(20)]);
    });
    const got = await scope.answered(meter(metrics, 1024)(inner.next)(fakeCall(), scope));
    assert.ok(scope.facts.meter !== undefined);
    await scope.finish(got);
    assert.equal(scope.facts.meter.usage.input, 7);
    assert.equal(scope.facts.meter.usage.output, 3);
    assert.equal(await metricValue(metrics, 'claude_api_calls_total', { status: '200', upstream: 'primary' }), 1);
  });

  test("inner interceptors' finally hooks read a finished meter", async () => {
    const scope = new FakeScope();
    let seenUsage: number | undefined;
    const inner = scriptedNext((_call, ctx) => {
      // Registered inside, so before the meter's own hook: it runs after it.
      ctx.finally(() => (seenUsage = ctx.facts.meter?.usage.input));
      return answer(200, [], [JSON_ANSWER]);
    });
    await scope.finish(await meter(testMetrics(), 1024)(inner.next)(fakeCall(), scope));
    assert.equal(seenUsage, 7);
  });

  test('a stream event larger than MAX_SSE_EVENT_BYTES fails the body with a coded 502', async () => {
    const scope = new FakeScope();
    const huge = `event: content_block_delta\ndata: ${'x'.repeat(200)}\n\n`;
    const got = await meter(testMetrics(), 64)(scriptedNext(() => answer(200, [], [huge], true)).next)(fakeCall(), scope);
    await assert.rejects(scope.pump(got), (err: unknown) => err instanceof GatewayError && err.code === 'UPSTREAM_RESPONSE_INVALID');
  });

  test('nothing was sent (an open breaker, a relayed answer): no upstream call is recorded', async () => {
    const metrics = testMetrics();
    const scope = new FakeScope();
    await assert.rejects(meter(metrics, 1024)(scriptedNext(() => Promise.reject(new Error('refused'))).next)(fakeCall(), scope));
    scope.settle({ head: undefined, error: new Error('refused') });
    assert.equal(await metricValue(metrics, 'claude_api_calls_total'), 0);
  });
});
