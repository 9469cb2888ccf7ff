import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { loadConfig } from '../../src/config.js';
import { startCoordination, type Coordination } from '../../src/coordination/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { PriceTable } from '../../src/core/pricing.js';
import type { FlightHead } from '../../src/pipeline/coalesce/flight.js';
import type { SharedJoin } from '../../src/pipeline/coalesce/shared-flights.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { eventually, within, SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';

/**
 * The Redis protocol of cross-instance flights, driven through the SharedFlights port itself
 * (two coordinations = two instances) against a real redis-server. Redis is tampered with directly
 * where a test needs a fault the gateway itself would never produce (a lost entry, a successor).
 */

const HEAD: FlightHead = { status: 200, headers: ['content-type', 'text/event-stream'], eventStream: true };

interface Instance {
  coordination: Coordination;
  metrics: GatewayMetrics;
}

async function instance(redisUrl: string, env: Record<string, string> = {}): Promise<Instance> {
  const config = loadConfig({ TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY, REDIS_URL: redisUrl, REDIS_CLAIM_TTL_MS: '600', REDIS_COMMAND_TIMEOUT_MS: '250', REDIS_RETRY_MS: '200', ...env });
  const metrics = new GatewayMetrics({ modes: undefined, maxModes: 5, maxModels: 5, prices: new PriceTable(), flightsInProgress: () => 0 });
  const coordination = startCoordination(config.redis as NonNullable<typeof config.redis>, config, metrics, createLogger('info', new LogCapture()));
  await eventually(async () => (await metrics.redisAvailable.get()).values[0]?.value === 1, 5_000, 'the instance to connect to Redis');
  return { coordination, metrics };
}

async function collect(body: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

function leader(join: SharedJoin): Extract<SharedJoin, { role: 'leader' }> {
  assert.equal(join.role, 'leader');
  return join;
}

function follower(join: SharedJoin): Extract<SharedJoin, { role: 'follower' }> {
  assert.equal(join.role, 'follower');
  return join;
}

describe('cross-instance flights on Redis (the SharedFlights port)', () => {
  let redis: RedisServer;
  let probe: ReturnType<typeof createClient>;
  let a: Instance;
  let b: Instance;
  let n = 0;
  const nextKey = (): string => `k${Date.now()}x${++n}`;

  /** A leads a new flight (`key`) and publishes its head; B joins that flight as a follower and has the head. */
  async function leadOnAFollowOnB(): Promise<{ key: string; lead: Extract<SharedJoin, { role: 'leader' }>; follow: Extract<SharedJoin, { role: 'follower' }> }> {
    const key = nextKey();
    const signal = new AbortController().signal;
    const lead = leader(await a.coordination.shared.join(key, signal));
    const joining = b.coordination.shared.join(key, signal);
    lead.publisher.head(HEAD);
    return { key, lead, follow: follower(await within(joining, 5_000, 'the follower to get the head')) };
  }

  before(async () => {
    redis = await startRedis();
    probe = createClient({ url: redis.url });
    await probe.connect();
    a = await instance(redis.url);
    b = await instance(redis.url);
  });
  after(async () => {
    await a.coordination.close();
    await b.coordination.close();
    probe.destroy();
    await redis.stop();
  });

  test('one instance leads, the other follows: same head, every byte in order, then the end', async () => {
    const { key, lead, follow } = await leadOnAFollowOnB();
    assert.deepEqual(follow.answer.head, HEAD);
    const parts = ['event: a\n\n', 'event: b\n\n', 'x'.repeat(200_000)];
    for (const p of parts) lead.publisher.chunk(Buffer.from(p));
    lead.publisher.end(true);
    assert.equal((await within(collect(follow.answer.body), 5_000, 'the body')).toString(), parts.join(''));
    assert.equal(follow.whole(), true, 'the leader marked its answer whole: the follower may keep it');
    // Released once the leader has the end entry's acknowledgement (the follower may read it first).
    await eventually(async () => (await probe.exists(`cgw:{${key}}:claim`)) === 0, 5_000, 'the claim to be released after the end');
  });

  test('an end not marked whole relays every byte and ends cleanly, but the follower must not keep it', async () => {
    const { lead, follow } = await leadOnAFollowOnB();
    lead.publisher.chunk(Buffer.from('event: message_start\ndata: {}\n\n'));
    lead.publisher.end(false);
    assert.equal((await within(collect(follow.answer.body), 5_000, 'the body')).toString(), 'event: message_start\ndata: {}\n\n');
    assert.equal(follow.whole(), false);
  });

  test('a lost entry (a gap in the sequence) fails the follower\'s body: never a complete-looking answer', async () => {
    const key = nextKey();
    // A leader written by hand: head 0-1, chunk 0-2, then chunk 0-4 and the end (0-3 was lost).
    const stream = `cgw:{${key}}:s:fake:1`;
    await probe.set(`cgw:{${key}}:claim`, 'fake:1', { expiration: { type: 'PX', value: 10_000 } });
    await probe.sendCommand(['XADD', stream, '0-1', 't', 'h', 'd', JSON.stringify(HEAD)]);
    await probe.sendCommand(['XADD', stream, '0-2', 't', 'c', 'd', Buffer.from('first ').toString('base64')]);
    await probe.sendCommand(['XADD', stream, '0-4', 't', 'c', 'd', Buffer.from('third').toString('base64')]);
    await probe.sendCommand(['XADD', stream, '0-5', 't', 'e', 'd', '']);
    const follow = follower(await within(b.coordination.shared.join(key, new AbortController().signal), 5_000, 'the follower'));
    const received: string[] = [];
    await assert.rejects(
      within(
        (async () => {
          for await (const part of follow.answer.body) received.push(part.toString());
        })(),
        5_000,
        'the body to settle',
      ),
      /part of the shared answer was lost/,
    );
    assert.deepEqual(received, ['first '], 'bytes before the gap were relayed, nothing after it');
  });

  test('a late leader cannot delete or extend its successor\'s claim (compare-and-delete, compare-and-pexpire)', async () => {
    const key = nextKey();
    const claim = `cgw:{${key}}:claim`;
    const lead = leader(await a.coordination.shared.join(key, new AbortController().signal));
    lead.publisher.head(HEAD);
    // The claim expired during a stall and another instance claimed the flight.
    await probe.set(claim, 'successor:1', { expiration: { type: 'PX', value: 60_000 } });
    // A's next heartbeat finds it is not the owner: it must not extend the successor's TTL.
    await eventually(async () => (await metricValue(a.metrics, 'remote_flight_publishers')) === 0, 5_000, 'A to notice it lost its claim');
    lead.publisher.end(true);
    assert.equal(await probe.get(claim), 'successor:1', 'the successor\'s claim survived');
    assert.ok((await probe.pTTL(claim)) > 30_000, 'and kept its own TTL (not shortened to the late leader\'s)');
  });

  test('followers share one reader connection: twenty concurrent follows open no connection', async () => {
    const clients = async (): Promise<number> => (await probe.sendCommand<string>(['CLIENT', 'LIST'])).trim().split('\n').length;
    const before = await clients();
    const keys = Array.from({ length: 20 }, () => nextKey());
    // A signal per call, as the gateway gives each (twenty waiters on one signal passed node's listener warning).
    const leads = await Promise.all(keys.map(async (k) => leader(await a.coordination.shared.join(k, new AbortController().signal))));
    const joins = keys.map((k) => b.coordination.shared.join(k, new AbortController().signal));
    for (const l of leads) l.publisher.head(HEAD);
    const follows = (await within(Promise.all(joins), 5_000, 'twenty followers')).map(follower);
    assert.equal(await metricValue(b.metrics, 'remote_flight_followers'), 20);
    assert.equal(await clients(), before, 'no connection was opened for the follows');
    for (const l of leads) {
      l.publisher.chunk(Buffer.from('done'));
      l.publisher.end(true);
    }
    for (const f of follows) assert.equal((await within(collect(f.answer.body), 5_000, 'a body')).toString(), 'done');
    await eventually(async () => (await metricValue(b.metrics, 'remote_flight_followers')) === 0, 5_000, 'the follower gauge back to zero');
  });

  test('a shared-cache entry over REDIS_CACHE_MAX_ENTRY_BYTES is simply not shared; a small one is', async () => {
    const c = await instance(redis.url, { CACHE: 'on', REDIS_CACHE_MAX_ENTRY_BYTES: '4096' });
    try {
      const cache = c.coordination.sharedCache;
      assert.ok(cache !== undefined);
      const answer = (bytes: number) => ({ head: { status: 200, headers: [], eventStream: false }, body: [Buffer.alloc(bytes, 97)], bytes, usage: undefined, model: undefined });
      cache.set('big', answer(8192));
      cache.set('small', answer(100));
      await eventually(async () => (await probe.exists('cgw:cache:small')) === 1, 5_000, 'the small entry in Redis');
      assert.equal(await probe.exists('cgw:cache:big'), 0);
    } finally {
      await c.coordination.close();
    }
  });
});

async function metricValue(metrics: GatewayMetrics, name: string): Promise<number> {
  const m = metrics.registry.getSingleMetric(name);
  if (m === undefined) return NaN;
  return (await m.get()).values.reduce((s, v) => s + v.value, 0);
}
