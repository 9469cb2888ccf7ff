import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisDomain } from '../../src/coordination/redis.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/observability/pricing.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/deferred.js';

describe('a Redis domain', () => {
  test('a reply error (NOSCRIPT) fails that command only: the connection stays up, nothing counts as a Redis error', async () => {
    const redis = await startRedis();
    const metrics = new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
    const domain = new RedisDomain({ name: 'test', url: redis.url, clusterNodes: undefined, tlsCa: undefined, commandTimeoutMs: 2_000, retryMs: 60_000 }, metrics, createLogger('info', new LogCapture()));
    try {
      domain.start();
      await until(() => domain.available, 10_000, 'the connection');
      // rate-limit-redis's first EVALSHA on a node that has not loaded its script answers exactly this.
      await assert.rejects(domain.send(undefined, ['EVALSHA', 'f'.repeat(40), '0']), /NOSCRIPT/);
      assert.equal(domain.available, true, 'a reply error must not take the domain down');
      assert.equal(await domain.send(undefined, ['PING']), 'PONG');
      assert.equal((await metrics.redisErrors.get()).values[0]?.value, 0);
    } finally {
      await domain.close();
      await redis.stop();
    }
  });
});
