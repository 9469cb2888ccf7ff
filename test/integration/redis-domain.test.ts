import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Options } from 'express-rate-limit';
import { RedisDomain } from '../../src/coordination/redis.js';
import { FallbackRateLimitStore } from '../../src/coordination/rate-limit-store.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/core/pricing.js';
import { createLogger } from '../../src/observability/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startRedis, startRedisCluster } from '../helpers/redis-server.js';
import { eventually, until } from '../helpers/deferred.js';

function newMetrics(): GatewayMetrics {
  return new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
}

/** One key per master of `startRedisCluster` (slots 3300, 7365, 15495): a command on each opens a connection to every master. */
const KEY_PER_MASTER = ['b', 'c', 'a'];

function redisCli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]).toString();
}

/** Client connections a server holds, not counting the redis-cli that asks. */
function clientConnections(port: number): number {
  return Number(/connected_clients:(\d+)/.exec(redisCli(port, 'INFO', 'clients'))?.[1]) - 1;
}

describe('a Redis domain', () => {
  test('a reply error (NOSCRIPT) fails that command only: the connection stays up, nothing counts as a Redis error', async () => {
    const redis = await startRedis();
    const metrics = newMetrics();
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

  test('a cluster connection recycled while the rate-limit store loads its scripts: no unhandled rejection (DisconnectsClientError)', async () => {
    // The flake this pins: rate-limit-redis's constructor sends two SCRIPT LOADs and keeps both promises.
    // When one runs past its deadline the domain destroys the cluster, which rejects the other with
    // DisconnectsClientError; nobody awaited that one, and an unhandled rejection ends the process.
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => {
      unhandled.push(err);
    };
    process.on('unhandledRejection', onUnhandled);
    const cluster = await startRedisCluster();
    const metrics = newMetrics();
    const clusterNodes = cluster.nodes.split(',').map((node) => `redis://${node}`);
    const domain = new RedisDomain({ name: 'rate-limit', url: 'redis://unused', clusterNodes, tlsCa: undefined, commandTimeoutMs: 300, retryMs: 60_000 }, metrics, createLogger('info', new LogCapture()));
    const store = new FallbackRateLimitStore(domain, 'cgw:rl:');
    // Only the window matters here (to the Redis store and to the MemoryStore fallback).
    store.init({ windowMs: 60_000 } as Options);
    try {
      domain.start();
      await until(() => domain.available, 10_000, 'the cluster connection');
      // Connected node clients, so the SCRIPT LOADs are written and wait for replies (not for a handshake).
      for (const key of KEY_PER_MASTER) await domain.send(key, ['GET', key]);
      // Every master stalls (SIGSTOP, servers started here): SCRIPT LOAD goes to a random one.
      for (const server of cluster.servers) server.pause();
      // The Redis store is created here with both loads in flight; the first deadline recycles the connection.
      assert.equal((await store.increment('client')).totalHits, 1, 'counted locally');
      assert.equal(domain.available, false, 'the stalled cluster took the domain down');
      // Unhandled rejections are reported once the microtask queue drains: one event-loop turn is enough.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        unhandled.map((err) => (err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err))),
        [],
        'no promise rejected without a handler',
      );
    } finally {
      process.off('unhandledRejection', onUnhandled);
      store.shutdown();
      for (const server of cluster.servers) server.resume();
      await domain.close();
      await cluster.stop();
    }
  });

  test('a cluster connection recycled after a master went away closes its connections to the other masters', async () => {
    const cluster = await startRedisCluster();
    const clusterNodes = cluster.nodes.split(',').map((node) => `redis://${node}`);
    const domain = new RedisDomain({ name: 'test', url: 'redis://unused', clusterNodes, tlsCa: undefined, commandTimeoutMs: 2_000, retryMs: 60_000 }, newMetrics(), createLogger('info', new LogCapture()));
    try {
      domain.start();
      await until(() => domain.available, 10_000, 'the cluster connection');
      for (const key of KEY_PER_MASTER) await domain.send(key, ['GET', key]);
      // The client lists masters in CLUSTER SLOTS order; the one it lists first goes away.
      const firstPort = Number(redisCli(cluster.servers[0]?.port ?? 0, 'CLUSTER', 'SLOTS').split('\n')[3]);
      const gone = cluster.servers.findIndex((s) => s.port === firstPort);
      const others = cluster.servers.filter((_, i) => i !== gone);
      assert.deepEqual(others.map((s) => clientConnections(s.port)), [1, 1], 'one connection to each master');
      await cluster.servers[gone]?.stop();
      // Its node client closes itself (no reconnect strategy); the next command there recycles the connection.
      await assert.rejects(domain.send(KEY_PER_MASTER[gone], ['GET', KEY_PER_MASTER[gone] ?? '']));
      assert.equal(domain.available, false);
      await eventually(() => Promise.resolve(others.every((s) => clientConnections(s.port) === 0)), 5_000, 'the connections to the other masters to close');
    } finally {
      await domain.close();
      await cluster.stop();
    }
  });
});
