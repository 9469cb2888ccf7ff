import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { GatewayError } from '../../../src/core/errors.js';
import { route } from '../../../src/pipeline/call/route.js';
import type { CallOutcome, FlightHead } from '../../../src/pipeline/coalesce/flight.js';
import { RetryBudget } from '../../../src/upstream/retry.js';
import type { UpstreamTarget } from '../../../src/upstream/targets.js';
import { UpstreamSet, type Upstream } from '../../../src/upstream/upstreams.js';
import { answer, answers, drainableBody, FakeScope, fails, fakeCall, fakeUpstream, gatewayError, metricValue, perUpstream, refuses, testMetrics, transportError, type Step } from '../../helpers/fake-call.js';

/** Upstreams on hosts of their own (a move between them is free) unless a test says otherwise. */
function up(name: string, extra: Partial<UpstreamTarget> = {}): Upstream {
  return fakeUpstream(name, { origin: `http://${name}.test:9`, ...extra });
}

function harness(upstreams: Upstream[], steps: Record<string, Step>, options: { maxAttempts?: number; budgetPercent?: number } = {}) {
  const metrics = testMetrics();
  // random() = 0: every tier keeps its configuration order.
  const set = new UpstreamSet(upstreams, () => 0);
  const fake = perUpstream(steps);
  const dispatch = route({ upstreams: set, maxAttempts: options.maxAttempts ?? 5, budget: new RetryBudget(options.budgetPercent ?? 0), metrics })(fake.next);
  const tried = (): string[] => fake.calls.map((c) => c.call.upstream?.name ?? '?');
  return { metrics, fake, dispatch, tried };
}

const failovers = (metrics: ReturnType<typeof testMetrics>, where: Record<string, string>): Promise<number> => metricValue(metrics, 'upstream_failovers_total', where);

/** The upstream an answer names in `x-gateway-upstream` (FlightHead.upstream: written after its headers). */
function upstreamOf(a: { head: FlightHead }): string | undefined {
  return a.head.upstream;
}

describe('route interceptor (failover policy)', () => {
  test('one candidate: one attempt, told it has no alternative, answer labelled with its name', async () => {
    const { dispatch, fake } = harness([up('only')], { only: answers(answer(503)) });
    const scope = new FakeScope();
    const got = await dispatch(fakeCall(), scope);
    assert.equal(got.head.status, 503, 'nothing to fail over to: the 503 is the answer');
    assert.equal(upstreamOf(got), 'only');
    assert.equal(scope.facts.upstream, 'only');
    const inner = fake.calls[0]?.call;
    assert.ok(inner !== undefined);
    assert.equal(inner.alternatives, 0);
    assert.equal(inner.attempts?.left, 4, 'the one attempt was spent from FAILOVER_MAX_ATTEMPTS');
  });

  test('no candidate serves the call: NO_UPSTREAM, nothing sent', async () => {
    const { dispatch, fake } = harness([up('a', { models: new Map([['other-model', 'other-model']]) })], {});
    await assert.rejects(dispatch(fakeCall(), new FakeScope()), (err: unknown) => err instanceof GatewayError && err.code === 'NO_UPSTREAM');
    assert.equal(fake.calls.length, 0);
  });

  test('an open breaker moves on for free: no attempt spent, counted as circuit_open', async () => {
    const { dispatch, tried, fake, metrics } = harness([up('a'), up('b')], { a: refuses(gatewayError('CIRCUIT_OPEN', { 'retry-after': '5' })), b: answers(answer(200)) }, { maxAttempts: 1 });
    const scope = new FakeScope();
    const got = await dispatch(fakeCall(), scope);
    assert.deepEqual(tried(), ['a', 'b']);
    assert.equal(got.head.status, 200);
    assert.equal(upstreamOf(got), 'b');
    assert.equal(scope.facts.upstream, 'b', 'the fact names the attempt that answered');
    assert.equal(fake.calls[1]?.call.attempts?.left, 0, 'b made the one attempt: the open breaker spent none');
    assert.equal(await failovers(metrics, { from: 'a', to: 'b', reason: 'circuit_open' }), 1);
  });

  test('every breaker open: the overload answer with the earliest retry-after', async () => {
    const { dispatch } = harness([up('a'), up('b'), up('c')], {
      a: refuses(gatewayError('CIRCUIT_OPEN', { 'retry-after': '30' })),
      b: refuses(gatewayError('CIRCUIT_OPEN', { 'retry-after': '3' })),
      c: refuses(gatewayError('CIRCUIT_OPEN', { 'retry-after': '10' })),
    });
    await assert.rejects(dispatch(fakeCall(), new FakeScope()), (err: unknown) => err instanceof GatewayError && err.code === 'CIRCUIT_OPEN' && err.headers['retry-after'] === '3');
  });

  for (const [status, reason] of [[500, 'status_5xx'], [503, 'status_5xx'], [529, 'overloaded']] as const) {
    test(`a ${status} answer moves on (${reason}) and its body is drained, not handed on`, async () => {
      const failed = drainableBody();
      const sent: Step = (call, ctx) => {
        ctx.facts.sentAt = 1;
        return answers({ head: answer(status).head, body: failed.body })(call, ctx);
      };
      const { dispatch, tried, metrics } = harness([up('a'), up('b')], { a: sent, b: answers(answer(200)) });
      const scope = new FakeScope();
      const got = await dispatch(fakeCall(), scope);
      assert.deepEqual(tried(), ['a', 'b']);
      assert.equal(got.head.status, 200);
      assert.equal(failed.body.resumed, true, 'the discarded answer was drained back to the pool');
      assert.equal(await failovers(metrics, { from: 'a', to: 'b', reason }), 1);
      assert.equal(await metricValue(metrics, 'claude_api_calls_total', { upstream: 'a', status: String(status) }), 1, 'the discarded attempt is an upstream call of its own');
      assert.equal(scope.facts.sentAt, undefined, "the call's clocks describe only the accepted attempt");
    });
  }

  for (const [code, reason] of [['ECONNREFUSED', 'connect'], ['ECONNRESET', 'unreachable'], ['UND_ERR_HEADERS_TIMEOUT', 'timeout']] as const) {
    test(`a transport failure (${code}) moves on as ${reason}`, async () => {
      const { dispatch, tried, metrics } = harness([up('a'), up('b')], { a: fails(transportError(code)), b: answers(answer(200)) });
      const got = await dispatch(fakeCall(), new FakeScope());
      assert.deepEqual(tried(), ['a', 'b']);
      assert.equal(got.head.status, 200);
      assert.equal(await failovers(metrics, { from: 'a', to: 'b', reason }), 1);
    });
  }

  test('credentials that cannot be had move on (auth)', async () => {
    const { dispatch, tried } = harness([up('a'), up('b')], { a: fails(gatewayError('UPSTREAM_AUTH_FAILED')), b: answers(answer(200)) });
    assert.equal((await dispatch(fakeCall(), new FakeScope())).head.status, 200);
    assert.deepEqual(tried(), ['a', 'b']);
  });

  test("an error of the gateway's own or the client's never moves on", async () => {
    for (const err of [gatewayError('NOT_FORWARDABLE'), gatewayError('NOT_TRANSLATABLE'), new Error('a bug')]) {
      const { dispatch, tried } = harness([up('a'), up('b')], { a: fails(err), b: answers(answer(200)) });
      await assert.rejects(dispatch(fakeCall(), new FakeScope()), (got: unknown) => got === err);
      assert.deepEqual(tried(), ['a']);
    }
  });

  test('a 4xx blames the request: no move; a 429 or 401 moves only for a gateway-held key', async () => {
    for (const status of [400, 404, 413]) {
      const { dispatch, tried } = harness([up('a'), up('b')], { a: answers(answer(status)), b: answers(answer(200)) });
      assert.equal((await dispatch(fakeCall(), new FakeScope())).head.status, status);
      assert.deepEqual(tried(), ['a']);
    }
    for (const [status, reason] of [[429, 'rate_limited'], [401, 'auth']] as const) {
      const held = harness([up('a'), up('b')], { a: answers(answer(status)), b: answers(answer(200)) });
      assert.equal((await held.dispatch(fakeCall(), new FakeScope())).head.status, 200);
      assert.equal(await failovers(held.metrics, { reason }), 1);
      const passThrough = harness([up('a', { holdsCredentials: false }), up('b', { holdsCredentials: false })], { a: answers(answer(status)), b: answers(answer(200)) });
      assert.equal((await passThrough.dispatch(fakeCall(), new FakeScope())).head.status, status, "the client's own key: another upstream would say the same");
      assert.deepEqual(passThrough.tried(), ['a']);
    }
  });

  test('tiers in order: the next tier only after every upstream of the first', async () => {
    const { dispatch, tried, fake } = harness([up('backup', { tier: 1 }), up('a'), up('b')], { a: answers(answer(503)), b: fails(transportError('ECONNREFUSED')), backup: answers(answer(200)) });
    const got = await dispatch(fakeCall(), new FakeScope());
    assert.deepEqual(tried(), ['a', 'b', 'backup']);
    assert.equal(upstreamOf(got), 'backup');
    assert.deepEqual(fake.calls.map((c) => c.call.alternatives), [2, 1, 0], 'inner interceptors know how many moves are left');
  });

  test('FAILOVER_MAX_ATTEMPTS bounds the moves: the last attempt allowed is the answer', async () => {
    const { dispatch, tried } = harness([up('a'), up('b'), up('c')], { a: answers(answer(503)), b: answers(answer(502)), c: answers(answer(200)) }, { maxAttempts: 2 });
    const got = await dispatch(fakeCall(), new FakeScope());
    assert.deepEqual(tried(), ['a', 'b'], 'c would be a third attempt');
    assert.equal(got.head.status, 502);
    const thrown = harness([up('a'), up('b'), up('c')], { a: fails(transportError('ECONNREFUSED')), b: fails(transportError('ECONNREFUSED')), c: answers(answer(200)) }, { maxAttempts: 2 });
    await assert.rejects(thrown.dispatch(fakeCall(), new FakeScope()), (err: unknown) => err instanceof GatewayError && err.code === 'UPSTREAM_CONNECT_FAILED');
    assert.deepEqual(thrown.tried(), ['a', 'b']);
  });

  test('a body that cannot be replayed never moves', async () => {
    const { dispatch, tried } = harness([up('a'), up('b')], { a: answers(answer(503)), b: answers(answer(200)) });
    const got = await dispatch(fakeCall({ body: Readable.from([Buffer.from('upload')]) }), new FakeScope());
    assert.equal(got.head.status, 503);
    assert.deepEqual(tried(), ['a']);
  });

  test('a move to another key on the same host after a 5xx needs a retry-budget token; after a 429 it is free', async () => {
    const sameHost = { origin: 'http://shared.test:9' };
    const broke = harness([up('k1', sameHost), up('k2', sameHost)], { k1: answers(answer(503)), k2: answers(answer(200)) }, { budgetPercent: 0 });
    assert.equal((await broke.dispatch(fakeCall(), new FakeScope())).head.status, 503, 'empty budget: no extra load on a struggling host');
    assert.deepEqual(broke.tried(), ['k1']);
    const funded = harness([up('k1', sameHost), up('k2', sameHost)], { k1: answers(answer(503)), k2: answers(answer(200)) }, { budgetPercent: 100 });
    assert.equal((await funded.dispatch(fakeCall(), new FakeScope())).head.status, 200);
    const limited = harness([up('k1', sameHost), up('k2', sameHost)], { k1: answers(answer(429)), k2: answers(answer(200)) }, { budgetPercent: 0 });
    assert.equal((await limited.dispatch(fakeCall(), new FakeScope())).head.status, 200, 'a 429 is about one key: moving costs nothing');
  });

  test('a stream whose first event is an error moves on (stream_error); a good stream is handed on whole', async () => {
    const bad = ['event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'];
    const good = ['event: message_start\ndata: {"type":"message_start"}\n\n', 'event: message_stop\ndata: {}\n\n'];
    const { dispatch, tried, metrics } = harness([up('a'), up('b')], { a: answers(answer(200, [], bad, true)), b: answers(answer(200, [], good, true)) });
    const scope = new FakeScope();
    const got = await dispatch(fakeCall(), scope);
    assert.deepEqual(tried(), ['a', 'b']);
    assert.equal(await failovers(metrics, { reason: 'stream_error' }), 1);
    assert.equal((await scope.pump(got)).toString(), good.join(''), 'the peeked event is not lost');
  });

  test("a discarded attempt's finally hooks run at once with its own outcome; the accepted one's join the flight", async () => {
    const seen: { upstream: string; outcome: CallOutcome }[] = [];
    const hooked = (name: string, step: Step): Step => (call, ctx) => {
      ctx.finally((outcome) => seen.push({ upstream: name, outcome }));
      return step(call, ctx);
    };
    const { dispatch } = harness([up('a'), up('b')], { a: hooked('a', answers(answer(503))), b: hooked('b', answers(answer(200))) });
    const scope = new FakeScope();
    const got = await dispatch(fakeCall(), scope);
    assert.deepEqual(seen.map((s) => [s.upstream, s.outcome.head?.status]), [['a', 503]], "a's permit/span settle now, b's wait for the body");
    await scope.finish(got);
    assert.deepEqual(seen.map((s) => [s.upstream, s.outcome.head?.status]), [['a', 503], ['b', 200]]);
  });
});
