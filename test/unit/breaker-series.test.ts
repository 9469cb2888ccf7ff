import { afterEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Breakers } from '../../src/pipeline/breaker.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/core/pricing.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { parseMetrics } from '../helpers/prom.js';

/** `circuit_breaker_state` on a real prom-client registry: one series per breaker label, read at each scrape. */

const OPTIONS = { errorThresholdPercent: 50, volumeThreshold: 1, windowMs: 10_000, resetTimeoutMs: 30_000 };

function setup(max: number, vouched: string[] = []): { breakers: Breakers; metrics: GatewayMetrics } {
  const metrics = new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, models: new Set(vouched), prices: new PriceTable(), flightsInProgress: () => 0 });
  return { breakers: new Breakers(OPTIONS, metrics, createLogger('silent', new LogCapture()), max), metrics };
}

/** The `circuit_breaker_state` series as the registry renders them: label → value. */
async function states(metrics: GatewayMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of parseMetrics(await metrics.render())) if (s.name === 'circuit_breaker_state') out[s.labels.breaker as string] = s.value;
  return out;
}

/** Lets opossum's promise callbacks run (its state changes when the action promise settles). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('circuit_breaker_state: one series per breaker', () => {
  afterEach(() => mock.timers.reset());

  test('each named breaker has its own series with its own state; an evicted breaker takes its series with it', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { breakers, metrics } = setup(2, ['model-a', 'model-b', 'model-c']);
    breakers.admit('primary', 'model-a', 'messages').fail(new Error('500'));
    breakers.admit('primary', 'model-b', 'messages').succeed();
    await settle();
    assert.deepEqual(await states(metrics), { 'primary/model-a': 2, 'primary/model-b': 0 }, 'the closed breaker does not overwrite the open one');
    mock.timers.tick(30_000);
    assert.deepEqual(await states(metrics), { 'primary/model-a': 1, 'primary/model-b': 0 }, 'half-open once the reset timeout passed');
    // Full (2): model-c evicts the least recently used closed breaker, model-b, and its series.
    breakers.admit('primary', 'model-c', 'messages').succeed();
    await settle();
    assert.equal(breakers.has('primary', 'model-b', 'messages'), false);
    assert.deepEqual(await states(metrics), { 'primary/model-a': 1, 'primary/model-c': 0 });
    breakers.shutdown();
  });

  test('breakers of models without a label of their own share `<upstream>/other`, which reports the worst of them; a model that earns its label gets its own series', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { breakers, metrics } = setup(1_000);
    breakers.admit('primary', 'junk-failing', 'messages').fail(new Error('500'));
    await settle();
    breakers.admit('primary', 'junk-fine', 'messages').succeed();
    breakers.admit('primary', 'earns-later', 'messages').succeed();
    breakers.admit('primary', undefined, 'models').succeed();
    await settle();
    assert.deepEqual(await states(metrics), { 'primary/other': 2, 'primary/endpoint:models': 0 }, 'a closed unlabelled breaker cannot hide an open one');
    metrics.models.earn('earns-later'); // upstream answered it with a 2xx (accounting does this)
    assert.deepEqual(await states(metrics), { 'primary/other': 2, 'primary/earns-later': 0, 'primary/endpoint:models': 0 });
    breakers.shutdown();
  });

  test('series are bounded by the breaker LRU, whatever model names clients send', async () => {
    const { breakers, metrics } = setup(3);
    for (let i = 0; i < 100; i++) {
      breakers.admit('primary', `junk-${i}`, 'messages').succeed();
      metrics.models.earn(`junk-${i}`); // the first 5 earn labels (MAX_MODELS), the rest cannot
    }
    await settle();
    const series = await states(metrics);
    assert.ok(Object.keys(series).length <= 3, `at most one series per live breaker: ${JSON.stringify(series)}`);
    assert.deepEqual(series, { 'primary/other': 0 }, 'the live breakers (junk-97..99) have no label of their own');
    breakers.shutdown();
  });
});
