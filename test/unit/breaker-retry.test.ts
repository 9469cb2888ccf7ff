import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Breakers } from '../../src/pipeline/breaker.js';
import { GatewayError } from '../../src/core/errors.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/core/pricing.js';
import { createLogger } from '../../src/observability/logger.js';
import { backoffMs, RetryBudget, requestedDelayMs } from '../../src/upstream/retry.js';
import { LogCapture } from '../helpers/log-capture.js';

const OPTIONS = { errorThresholdPercent: 50, volumeThreshold: 1, windowMs: 10_000, resetTimeoutMs: 30_000 };

function breakers(max = 1_000): Breakers {
  const metrics = new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
  return new Breakers(OPTIONS, metrics, createLogger('silent', new LogCapture()), max);
}

/** Lets opossum's promise callbacks run (its state changes when the action promise settles). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('breaker permits', () => {
  afterEach(() => mock.timers.reset());

  test('an open breaker refuses with 529 overloaded_error naming the model, never the host', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const b = breakers();
    b.admit('primary', 'claude-sonnet-5', 'messages').fail(new Error('500'));
    await settle();
    assert.throws(
      () => b.admit('primary', 'claude-sonnet-5', 'messages'),
      (err: unknown) =>
        err instanceof GatewayError && err.status === 529 && err.type === 'overloaded_error' && /claude-sonnet-5/.test(err.message) && !/upstream\.test/.test(err.message) && err.headers['retry-after'] === '30',
    );
    // Another model, a model-less endpoint and the same model on another upstream have breakers of their own.
    b.admit('secondary', 'claude-sonnet-5', 'messages').succeed();
    b.admit('primary', 'claude-haiku-5-5', 'messages').succeed();
    b.admit('primary', undefined, 'models').succeed();
    b.shutdown();
  });

  test('half-open admits exactly one probe, marked as such; its permit settles the breaker', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const b = breakers();
    b.admit('primary', 'm', 'messages').fail(new Error('500'));
    await settle();
    mock.timers.tick(30_000);
    const probe = b.admit('primary', 'm', 'messages');
    assert.equal(probe.probe, true);
    assert.throws(() => b.admit('primary', 'm', 'messages'), /recovery probe/);
    probe.succeed();
    await settle();
    const after = b.admit('primary', 'm', 'messages');
    assert.equal(after.probe, false, 'closed again');
    after.succeed();
    b.shutdown();
  });

  test('a busy breaker sorts nothing: no latency percentiles each bucket interval or on a failure', async () => {
    // opossum's defaults concatenated and sorted every call's latency in the window each bucket
    // interval (a tenth of the window) and on every failure: 10,000 at 1,000 req/s, a stall of
    // milliseconds per second per breaker that nothing read.
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const b = breakers();
    for (let i = 0; i < 200; i++) b.admit('primary', 'm', 'messages').succeed();
    await settle();
    // Counts sorts by hand: node:test's mock.method refuses Array.prototype.
    const sort = Array.prototype.sort;
    let sorts = 0;
    Array.prototype.sort = function <T>(this: T[], compare?: (a: T, b: T) => number): T[] {
      sorts++;
      return sort.call(this, compare) as T[];
    };
    try {
      mock.timers.tick(OPTIONS.windowMs);
      b.admit('primary', 'm', 'messages').fail(new Error('500'));
      await settle();
      assert.equal(sorts, 0);
    } finally {
      Array.prototype.sort = sort;
      b.shutdown();
    }
  });

  test('refuses (read by cache affinity): true while open, false once half-open (its probe must be let through), creates nothing', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const b = breakers();
    assert.equal(b.refuses('primary', 'm', 'messages'), false);
    assert.equal(b.has('primary', 'm', 'messages'), false, 'asking created no breaker');
    b.admit('primary', 'm', 'messages').fail(new Error('500'));
    await settle();
    assert.equal(b.refuses('primary', 'm', 'messages'), true, 'open');
    assert.equal(b.refuses('primary', 'other', 'messages'), false, 'per model');
    mock.timers.tick(30_000);
    assert.equal(b.refuses('primary', 'm', 'messages'), false, 'half-open: the next call is the probe');
    b.shutdown();
  });

  test('breakers are bounded: the least recently used closed breaker is evicted, an open one is kept', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const b = breakers(3);
    b.admit('primary', 'open-model', 'messages').fail(new Error('500'));
    await settle();
    for (let i = 0; i < 50; i++) b.admit('primary', `junk-${i}`, 'messages').succeed();
    assert.equal(b.size, 3);
    assert.throws(() => b.admit('primary', 'open-model', 'messages'), (err: unknown) => err instanceof GatewayError && err.status === 529, 'junk cannot evict an open breaker');
    b.shutdown();
  });

  test('eviction takes the least recently used closed breaker, however often the others were used before', () => {
    const b = breakers(3);
    for (const model of ['a', 'b', 'c']) b.admit('primary', model, 'messages').succeed();
    b.admit('primary', 'a', 'messages').succeed(); // a is now more recent than b and c
    b.admit('primary', 'c', 'messages').succeed();
    b.admit('primary', 'd', 'messages').succeed(); // full: b goes
    assert.deepEqual(['a', 'b', 'c', 'd'].map((m) => b.has('primary', m, 'messages')), [true, false, true, true]);
    b.shutdown();
  });
});

describe('retry arithmetic', () => {
  test('the budget lets retries add at most the configured share of requests, plus its reserve', () => {
    const budget = new RetryBudget(10, 2);
    let retries = 0;
    for (let i = 0; i < 100; i++) {
      budget.onRequest();
      if (budget.tryWithdraw()) retries++;
    }
    assert.ok(retries <= 2 + 10, `retries ${retries}`);
    assert.ok(retries >= 10);
    const none = new RetryBudget(0);
    none.onRequest();
    assert.equal(none.tryWithdraw(), false);
  });

  test('retry-after-ms, retry-after in seconds, and retry-after as an HTTP date', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    assert.equal(requestedDelayMs(['retry-after-ms', '250'], now), 250);
    assert.equal(requestedDelayMs(['retry-after', '3'], now), 3_000);
    assert.equal(requestedDelayMs(['retry-after', 'Mon, 23 Nov 2026 12:00:05 GMT'], now), 5_000);
    assert.equal(requestedDelayMs(['retry-after', 'Mon, 23 Nov 2026 11:59:00 GMT'], now), 0, 'a date in the past means now');
    assert.equal(requestedDelayMs(['retry-after', 'soon'], now), undefined);
    assert.equal(requestedDelayMs(['retry-after', ''], now), undefined);
    assert.equal(requestedDelayMs([], now), undefined);
  });

  test('full-jitter backoff stays within [0, min(max, base * 2^attempt)]', () => {
    const policy = { maxRetries: 5, onOverloaded: false, baseDelayMs: 100, maxDelayMs: 1_000 };
    assert.equal(backoffMs(3, policy, () => 0.999999), 800);
    assert.equal(backoffMs(10, policy, () => 0.999999), 1_000);
    assert.equal(backoffMs(10, policy, () => 0), 0);
  });
});
