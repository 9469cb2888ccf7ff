import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../../../src/observability/logger.js';
import { RequestTracing } from '../../../src/observability/tracing.js';
import { compose, observer, type Dispatch, type Interceptor, type RoutedCall, type UpstreamCall } from '../../../src/pipeline/call/chain.js';
import { AttemptScope } from '../../../src/pipeline/call/attempt.js';
import { meter } from '../../../src/pipeline/call/meter.js';
import { reportBrokenAnswers } from '../../../src/pipeline/call/report.js';
import { retry } from '../../../src/pipeline/call/retry.js';
import { rewrite } from '../../../src/pipeline/call/rewrite.js';
import { share } from '../../../src/pipeline/call/share.js';
import { trace } from '../../../src/pipeline/call/trace.js';
import type { FlightSource } from '../../../src/pipeline/coalesce/flight.js';
import { RetryBudget, type RetryPolicy } from '../../../src/upstream/retry.js';
import { deferred } from '../../helpers/deferred.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { answer, FakeScope, fakeCall, fakeUpstream, testMetrics, type SeenCall } from '../../helpers/fake-call.js';

/** A next that hands back one pending promise (the test holds its resolve) and records what it was given. */
function pendingNext(): { next: Dispatch; answered: ReturnType<typeof deferred<FlightSource>>; seen: SeenCall[] } {
  const answered = deferred<FlightSource>();
  const seen: SeenCall[] = [];
  const next: Dispatch = (call: SeenCall) => {
    seen.push(call);
    return answered.promise;
  };
  return { next, answered, seen };
}

describe('chain: observers add no promise of their own', () => {
  test('the outer observers (meter, report, share without a store) are one synchronous step: the chain hands back the very promise of the dispatch inside', async () => {
    const scope = new FakeScope();
    const inner = pendingNext();
    const call = fakeCall();
    const dispatched = compose<UpstreamCall>([meter(testMetrics(), 1024), reportBrokenAnswers(createLogger('info', new LogCapture())), share(undefined)], inner.next)(call, scope);
    assert.equal(dispatched, inner.answered.promise, 'no promise between the chain and the route');
    assert.equal(inner.seen[0], call, 'the call handed inward as it came');
    // Every hook is registered before the answer exists: the answer reaches them through the scope.
    assert.equal(scope.facts.origin, 'upstream');
    assert.equal(scope.hooks.length, 2, "the meter's accounting and the report's warning");
    assert.equal(scope.headHooks.length, 1, "the meter's head hook");
    inner.answered.resolve(answer(200, [], ['{"usage":{"input_tokens":2,"output_tokens":1}}']));
    await scope.finish(await scope.answered(dispatched));
    assert.equal(scope.facts.meter?.usage.input, 2);
  });

  test('the inner observer (trace) passes its copy of the call inward, in the same step; rewrite without rewriteJson adds no promise', async () => {
    const provider = new BasicTracerProvider();
    try {
      const scope = new FakeScope();
      const inner = pendingNext();
      const call = fakeCall({ upstream: fakeUpstream('primary') });
      const dispatched = compose<RoutedCall>([trace(new RequestTracing(provider.getTracer('test'))), rewrite()], inner.next)(call, scope);
      assert.equal(dispatched, inner.answered.promise);
      assert.notEqual(inner.seen[0], call, 'a copy');
      assert.equal(inner.seen[0]?.headers.at(-2), 'traceparent');
      assert.ok(scope.facts.span !== undefined);
      inner.answered.resolve(answer(200));
      scope.settle({ head: (await dispatched).head });
    } finally {
      await provider.shutdown();
    }
  });

  test('retry adds no promise where it can never retry (another upstream to move to, a streamed body, UPSTREAM_RETRIES=0); it waits only for a call it may retry', () => {
    const policy: RetryPolicy = { maxRetries: 2, onOverloaded: true, baseDelayMs: 100, maxDelayMs: 5_000 };
    const upstream = fakeUpstream('only');
    const cases: [string, RetryPolicy, RoutedCall][] = [
      ['another upstream left', policy, fakeCall({ upstream, alternatives: 1 })],
      ['a streamed body', policy, fakeCall({ upstream, body: Readable.from([Buffer.from('x')]) })],
      ['UPSTREAM_RETRIES=0', { ...policy, maxRetries: 0 }, fakeCall({ upstream })],
    ];
    for (const [what, given, call] of cases) {
      const inner = pendingNext();
      assert.equal(compose<RoutedCall>([retry(given, new RetryBudget(100), testMetrics())], inner.next)(call, new FakeScope()), inner.answered.promise, what);
      inner.answered.resolve(answer(200));
    }
    const inner = pendingNext();
    assert.notEqual(compose<RoutedCall>([retry(policy, new RetryBudget(100), testMetrics())], inner.next)(fakeCall({ upstream }), new FakeScope()), inner.answered.promise);
    inner.answered.resolve(answer(200));
  });

  test('observers run in the written order around the interceptors between them, each handing the next its call', async () => {
    const order: string[] = [];
    const tag = (name: string) =>
      observer<UpstreamCall>((call) => {
        order.push(name);
        return { ...call, headers: [...call.headers, 'x-seen', name] };
      });
    // An interceptor (no `see`): the observers on either side of it are two steps, not one.
    const between: Interceptor<UpstreamCall> = (next) => (call, ctx) => {
      order.push('between');
      return next(call, ctx);
    };
    const inner = pendingNext();
    const dispatched = compose<UpstreamCall>([tag('a'), tag('b'), between, tag('c')], inner.next)(fakeCall(), new FakeScope());
    assert.deepEqual(order, ['a', 'b', 'between', 'c']);
    assert.deepEqual(inner.seen[0]?.headers, ['x-seen', 'a', 'x-seen', 'b', 'x-seen', 'c']);
    inner.answered.resolve(answer(200));
    await dispatched;
  });

  test('an observer that throws fails the call as a rejected dispatch; nothing inward runs', async () => {
    const inner = pendingNext();
    const broken = observer<UpstreamCall>(() => {
      throw new Error('observer bug');
    });
    const dispatched = compose<UpstreamCall>([broken], inner.next)(fakeCall(), new FakeScope());
    await assert.rejects(dispatched, /observer bug/);
    assert.equal(inner.seen.length, 0);
  });

  test('an observer alone is an interceptor: observer(see)(next) is the same one step', () => {
    const inner = pendingNext();
    const seeAll = observer<UpstreamCall>((call) => call);
    assert.equal(seeAll(inner.next)(fakeCall(), new FakeScope()), inner.answered.promise);
    inner.answered.resolve(answer(200));
  });

  test('the outer/inner split holds for observers (compile time)', () => {
    const routedOnly = observer<RoutedCall>((call) => call);
    const edgeOnly = observer<UpstreamCall>((call) => call);
    const inner = pendingNext();
    // @ts-expect-error an observer that needs the route's decisions cannot stand outside the route
    compose<UpstreamCall>([routedOnly], inner.next);
    // @ts-expect-error an outer observer's call is not routed: it cannot stand inside the route
    compose<RoutedCall>([edgeOnly], inner.next);
    assert.ok(true);
  });
});

describe("an attempt's head hooks", () => {
  test('join the call when the route accepts the attempt, and never run when it discards it', () => {
    const flight = new FakeScope();
    const seen: string[] = [];
    const accepted = new AttemptScope(flight);
    accepted.onHead(() => seen.push('accepted'));
    const discarded = new AttemptScope(flight);
    discarded.onHead(() => seen.push('discarded'));
    discarded.discard({ head: undefined, error: new Error('failed over'), complete: false, abandoned: false, subscribers: 0 });
    accepted.accept();
    accepted.onHead(() => seen.push('after accept'));
    assert.deepEqual(seen, []);
    flight.headArrived(answer(200).head);
    assert.deepEqual(seen, ['accepted', 'after accept']);
  });
});
