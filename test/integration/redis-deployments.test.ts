import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import type { Gateway } from '../../src/server.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { deferred, until } from '../helpers/deferred.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startRedis, startRedisCluster } from '../helpers/redis-server.js';
import { eventually, metric, remoteGaugesAtZero, startInstance, withPair, within } from '../helpers/scale-out.js';
import { TEST_API_KEY } from '../helpers/stack.js';

/**
 * The Redis deployments people run: TLS with a private CA, ACL users with passwords, and a
 * 3-master Cluster, each a real redis-server started here on free ports.
 */

const params = { model: 'claude-sonnet-5', max_tokens: 24, messages: [{ role: 'user' as const, content: 'deployments' }] };

/** Short claims and fast retries: a deployment that recovers within a test. */
const QUICK = { REDIS_CLAIM_TTL_MS: '600', REDIS_RETRY_MS: '200' };

/** The mock, then the Redis deployment the test started for its instances. */
async function closeBoth(mock: MockUpstream, redis: { stop(): Promise<void> }): Promise<void> {
  await mock.close();
  await redis.stop();
}

function client(gw: Gateway, key = TEST_API_KEY): Anthropic {
  return new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });
}

/** A on one instance leads (its upstream call is held), B's identical call follows it through Redis. */
async function coalescesAcross(mock: MockUpstream, a: Gateway, b: Gateway, gate: { resolve(): void }, content: string): Promise<void> {
  const body = { ...params, messages: [{ role: 'user' as const, content }] };
  const onA = client(a).messages.create(body);
  await until(() => mock.requests.length === 1, 5_000, 'A to call upstream');
  const onB = client(b).messages.create(body).withResponse();
  await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, 'B to follow A through Redis');
  gate.resolve();
  const [fromA, fromB] = await within(Promise.all([onA, onB]), 5_000, 'both answers');
  assert.deepEqual(fromB.data, fromA);
  assert.equal(mock.stats().byPath['POST /v1/messages'], 1, 'one upstream call for both instances');
  assert.equal(await metric(b.url, 'claude_tokens_total'), 0, 'B billed nothing');
  for (const g of [a, b]) await eventually(() => remoteGaugesAtZero(g.url), 5_000, 'gauges back to zero');
}

describe('Redis deployments', () => {
  test('TLS (rediss:// with a private CA) and an ACL user: instances coalesce, the password never reaches the logs', async () => {
    const password = 'acl-secret-Pa55:word/x';
    const redis = await startRedis({ tls: true, aclUser: { name: 'gateway', password } });
    const gate = deferred();
    const mock = await createMockUpstream({ onRequest: () => gate.promise });
    const logs = new LogCapture();
    const env = { ...QUICK, REDIS_TLS_CA_FILE: redis.tls?.caFile ?? '' };
    // Both on Redis before the test goes on: the TLS connection with ACL auth works.
    await withPair({ upstreamUrl: mock.url, redisUrl: redis.url, env, logs, release: () => gate.resolve(), close: () => closeBoth(mock, redis) }, async (a, b) => {
      await coalescesAcross(mock, a, b, gate, 'over tls');
      assert.ok(!logs.text().includes(password), 'the Redis password is not logged');
    });
  });

  test('a wrong ACL password: Redis stays unused, requests are served locally, the password is not logged', async () => {
    const redis = await startRedis({ aclUser: { name: 'gateway', password: 'right-password' } });
    const mock = await createMockUpstream();
    const logs = new LogCapture();
    const wrong = 'wrong-password-xyz';
    const gw = await startInstance(mock.url, `redis://gateway:${wrong}@127.0.0.1:${redis.port}`, QUICK, logs);
    try {
      await eventually(async () => (await metric(gw.url, 'redis_errors_total')) >= 1, 5_000, 'the refused login to be counted');
      assert.equal(await metric(gw.url, 'redis_available'), 0);
      assert.equal((await within(client(gw).messages.create(params), 5_000, 'a local answer')).type, 'message');
      assert.ok(!logs.text().includes(wrong), 'the password is not logged');
    } finally {
      await gw.shutdown();
      await mock.close();
      await redis.stop();
    }
  });

  test('a 3-master Redis Cluster (REDIS_CLUSTER_NODES): instances coalesce and share rate limits', async () => {
    const cluster = await startRedisCluster();
    let gate = deferred();
    const mock = await createMockUpstream({ onRequest: () => gate.promise });
    // Sharing is what this test checks, not the command deadline: under CI load a 250 ms deadline can fire once,
    // and the instance then counts locally for REDIS_RETRY_MS (by design; scale-out-faults tests that fallback).
    const env = { ...QUICK, REDIS_CLUSTER_NODES: cluster.nodes, RATE_LIMIT_RPM: '10', REDIS_COMMAND_TIMEOUT_MS: '2000' };
    // Both on the cluster before the test goes on.
    await withPair({ upstreamUrl: mock.url, redisUrl: undefined, env, release: () => gate.resolve(), close: () => closeBoth(mock, cluster) }, async (a, b) => {
      // Several flights, so that their keys land on different masters.
      for (let i = 0; i < 3; i++) {
        mock.reset();
        gate = deferred();
        await coalescesAcross(mock, a, b, gate, `cluster flight ${i} ${Date.now()}`);
      }
      gate.resolve();
      for (const g of [a, b]) await eventually(async () => (await metric(g.url, 'redis_domain_available', { domain: 'rate-limit' })) === 1, 10_000, 'the rate-limit connection to the cluster');
      const key = `sk-ant-cluster-limit-${Date.now()}`;
      for (let i = 0; i < 10; i++) assert.equal((await client(i % 2 === 0 ? a : b, key).messages.create({ ...params, max_tokens: 5 })).type, 'message');
      await assert.rejects(client(b, key).messages.create({ ...params, max_tokens: 6 }), (err: unknown) => err instanceof Anthropic.RateLimitError);
    });
  });
});
