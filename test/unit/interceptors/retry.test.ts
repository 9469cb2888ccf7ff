import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { GatewayError } from '../../../src/core/errors.js';
import { AttemptLimit } from '../../../src/pipeline/call/attempt-limit.js';
import { retry } from '../../../src/pipeline/call/retry.js';
import { RetryBudget, type RetryPolicy } from '../../../src/upstream/retry.js';
import { answer, answers, FakeScope, fails, fakeCall, fakeUpstream, flush, metricValue, scriptedNext, testMetrics, transportError, type Step } from '../../helpers/fake-call.js';

const POLICY: RetryPolicy = { maxRetries: 2, onOverloaded: true, baseDelayMs: 100, maxDelayMs: 5_000 };
const only = fakeUpstream('only');

function harness(steps: Step[], options: { policy?: Partial<RetryPolicy>; budgetPercent?: number } = {}) {
  const metrics = testMetrics();
  const fake = scriptedNext(...steps);
  const dispatch = retry({ ...POLICY, ...options.policy }, new RetryBudget(options.budgetPercent ?? 100), metrics)(fake.next);
  return { metrics, fake, dispatch };
}

/** A call as the route hands it in when no other upstream is left: the retry's own case. */
const call = (attempts = 5, extra: Parameters<typeof fakeCall>[0] = {}) => fakeCall({ upstream: only, alternatives: 0, attempts: new AttemptLimit(attempts), ...extra });

/** Lets the interceptor reach its next wait (several promise hops), then moves the mocked clock. */
async function advance(t: TestContext, ms: number): Promise<void> {
  for (let i = 0; i < 5; i++) await flush();
  t.mock.timers.tick(ms);
  for (let i = 0; i < 5; i++) await flush();
}

const connectFailed = (): Step => fails(transportError('ECONNREFUSED'));
const isCode = (code: string) => (err: unknown): boolean => err instanceof GatewayError && err.code === code;

describe('retry interceptor', () => {
  test('a connection never established is retried after a bounded backoff; the retry spends an attempt', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { dispatch, fake, metrics } = harness([connectFailed(), answers(answer(200))]);
    const c = call();
    const pending = dispatch(c, new FakeScope());
    await advance(t, POLICY.baseDelayMs); // full jitter: attempt 0 waits at most baseDelayMs
    const got = await pending;
    assert.equal(got.head.status, 200);
    assert.equal(fake.calls.length, 2);
    assert.equal(c.attempts.left, 3);
    assert.equal(await metricValue(metrics, 'upstream_retries_total', { reason: 'connect' }), 1);
  });

  test("a 529 is retried after the upstream's retry-after, not before", async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const overloaded = Readable.from([Buffer.from('{}')]);
    const { dispatch, fake, metrics } = harness([answers({ head: answer(529, [['retry-after', '2']]).head, body: overloaded }), answers(answer(200))]);
    const pending = dispatch(call(), new FakeScope());
    await advance(t, 1_999);
    assert.equal(fake.calls.length, 1, 'still waiting for the retry-after');
    await advance(t, 1);
    assert.equal(fake.calls.length, 2);
    assert.equal((await pending).head.status, 200);
    assert.equal(overloaded.readableFlowing, true, 'the unwanted 529 body was drained');
    assert.equal(await metricValue(metrics, 'upstream_retries_total', { reason: 'overloaded' }), 1);
  });

  test('a 529 asking for longer than maxDelayMs, or with ON_OVERLOADED off, passes on as it is', async () => {
    const long = harness([answers(answer(529, [['retry-after', '60']])), answers(answer(200))]);
    assert.equal((await long.dispatch(call(), new FakeScope())).head.status, 529);
    assert.equal(long.fake.calls.length, 1);
    const off = harness([answers(answer(529)), answers(answer(200))], { policy: { onOverloaded: false } });
    assert.equal((await off.dispatch(call(), new FakeScope())).head.status, 529);
    assert.equal(off.fake.calls.length, 1);
  });

  test('what is not provably safe is never retried: a lost connection, a timeout, a 5xx', async () => {
    for (const code of ['ECONNRESET', 'UND_ERR_HEADERS_TIMEOUT']) {
      const { dispatch, fake } = harness([fails(transportError(code)), answers(answer(200))]);
      await assert.rejects(dispatch(call(), new FakeScope()), (err: unknown) => err instanceof GatewayError && err.code !== 'UPSTREAM_CONNECT_FAILED');
      assert.equal(fake.calls.length, 1, code);
    }
    const { dispatch, fake } = harness([answers(answer(503)), answers(answer(200))]);
    assert.equal((await dispatch(call(), new FakeScope())).head.status, 503);
    assert.equal(fake.calls.length, 1);
  });

  test('no retry when the route has another upstream, the body cannot be replayed, the budget is empty, or no attempt is left', async () => {
    const cases: [string, ReturnType<typeof call>, number | undefined][] = [
      ['another upstream left', call(5, { alternatives: 1 }), undefined],
      ['a streamed body', call(5, { body: Readable.from([Buffer.from('x')]) }), undefined],
      ['an empty retry budget', call(), 0],
      ['FAILOVER_MAX_ATTEMPTS spent', call(1), undefined],
    ];
    for (const [what, c, budgetPercent] of cases) {
      const { dispatch, fake } = harness([connectFailed(), answers(answer(200))], { budgetPercent });
      await assert.rejects(dispatch(c, new FakeScope()), isCode('UPSTREAM_CONNECT_FAILED'), what);
      assert.equal(fake.calls.length, 1, what);
    }
  });

  test('maxRetries bounds the retries of one attempt', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { dispatch, fake } = harness([connectFailed(), connectFailed(), connectFailed(), answers(answer(200))]);
    const pending = dispatch(call(), new FakeScope());
    const outcome = assert.rejects(pending, isCode('UPSTREAM_CONNECT_FAILED'));
    for (let i = 0; i < 3; i++) await advance(t, POLICY.maxDelayMs);
    await outcome;
    assert.equal(fake.calls.length, 1 + POLICY.maxRetries);
  });

  test('the call being stopped ends the backoff at once: no further attempt', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { dispatch, fake } = harness([connectFailed(), answers(answer(200))]);
    const scope = new FakeScope();
    const pending = dispatch(call(), scope);
    const outcome = assert.rejects(pending, (err: unknown) => err instanceof DOMException && err.name === 'AbortError');
    for (let i = 0; i < 5; i++) await flush();
    scope.stop.abort();
    await outcome;
    assert.equal(fake.calls.length, 1);
  });
});
