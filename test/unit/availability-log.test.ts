import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logCoordinationMode, redisTargets } from '../../src/coordination/availability-log.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';

test('the start-up line names the coordination mode and the Redis nodes, never their credentials', async () => {
  const capture = new LogCapture();
  const logger = createLogger('info', capture);
  logCoordinationMode('local', [], logger);
  logCoordinationMode('redis', redisTargets('rediss://gw:s3cret-password@cache.internal:6380', undefined), logger);
  logCoordinationMode('redis-cluster', redisTargets('redis://u:p4ss@a:7000', ['redis://u:p4ss@a:7000', 'redis://u:p4ss@b:7001']), logger);
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const lines = capture.records().map((r) => [r.coordination, r.redis, r.msg]);
  assert.deepEqual(lines.map(([mode, redis]) => [mode, redis]), [
    ['local', undefined],
    ['redis', ['cache.internal:6380']],
    ['redis-cluster', ['a:7000', 'b:7001']],
  ]);
  assert.match(String(lines[0]?.[2]), /^coordination: local/);
  assert.match(String(lines[1]?.[2]), /^coordination: Redis, connecting/);
  assert.match(String(lines[2]?.[2]), /^coordination: Redis Cluster, connecting/);
  assert.ok(!capture.text().includes('s3cret') && !capture.text().includes('p4ss'), 'no credential in the lines');
});
