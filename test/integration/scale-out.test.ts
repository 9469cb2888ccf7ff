import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { createClient } from 'redis';
import type { Gateway } from '../../src/server.js';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { deferred, until } from '../helpers/deferred.js';
import { eventually, metric, rawStream, redisAvailable, remoteGaugesAtZero, spawnGateway, startInstance, withPair, within, type GatewayProcess } from '../helpers/scale-out.js';
import { scrape, sum } from '../helpers/prom.js';
import { redisForSuite } from '../helpers/redis-server.js';
import { TEST_API_KEY } from '../helpers/stack.js';

const params = { model: 'claude-sonnet-5', max_tokens: 24, messages: [{ role: 'user' as const, content: 'across instances' }] };

/** Redis retried fast, so that shared mode comes back quickly after a Redis restart. */
const RETRY_FAST = { REDIS_RETRY_MS: '200' };

async function gateway(mock: MockUpstream, redisUrl: string, env: Record<string, string> = {}): Promise<Gateway> {
  return startInstance(mock.url, redisUrl, { ...RETRY_FAST, ...env });
}

/** A gateway as its own process (so it can really die), on the same Redis and upstream. */
async function spawnLeader(mock: MockUpstream, redisUrl: string): Promise<GatewayProcess> {
  return spawnGateway({ UPSTREAM_URL: mock.url, REDIS_URL: redisUrl, REDIS_CLAIM_TTL_MS: '600' });
}

/** Two in-process instances in front of `mock` on one Redis, every Redis connection up; the mock is closed after them. */
async function pairOn(mock: MockUpstream, redisUrl: string, env: Record<string, string>, fn: (a: Gateway, b: Gateway) => Promise<void>): Promise<void> {
  await withPair({ upstreamUrl: mock.url, redisUrl, env: { ...RETRY_FAST, ...env }, allConnections: true, close: () => mock.close() }, fn);
}

function client(gw: Gateway, key = TEST_API_KEY): Anthropic {
  return new Anthropic({ apiKey: key, baseURL: gw.url, maxRetries: 0 });
}

describe('two gateway instances on one real Redis', () => {
  const redis = redisForSuite();

  test('identical concurrent calls split across instances cost one upstream call, plain and streamed', async () => {
    const gate = deferred();
    let current = gate;
    const mock = await createMockUpstream({ onRequest: () => current.promise });
    const release = (): void => {
      gate.resolve();
      current.resolve();
    };
    await withPair({ upstreamUrl: mock.url, redisUrl: redis.url, env: RETRY_FAST, release, close: () => mock.close() }, async (a, b) => {
      // Plain: A leads (its call reaches upstream and holds), then B's requests follow through Redis.
      const viaA = Array.from({ length: 3 }, () => client(a).messages.create(params));
      await until(() => mock.requests.length === 1, 5_000, 'A to call upstream');
      const viaB = Array.from({ length: 3 }, () => client(b).messages.create(params));
      await until(() => b.flights.subscribers() === 3, 5_000, 'B to coalesce locally');
      await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, 'B to follow A\'s flight');
      gate.resolve();
      const answers = await Promise.all([...viaA, ...viaB]);
      assert.equal(mock.stats().byPath['POST /v1/messages'], 1, 'one upstream call for six clients on two instances');
      for (const m of answers) assert.deepEqual(m, answers[0]);
      const savedOnB = sum(await scrape(b.url), 'claude_tokens_saved_total', { type: 'output', source: 'coalesced' });
      assert.equal(savedOnB, 3 * (answers[0]?.usage.output_tokens ?? 0), 'all three B clients were served without a B upstream call');
      assert.equal(sum(await scrape(b.url), 'claude_tokens_total'), 0, 'B billed nothing');

      // Streams: byte-identical SSE everywhere.
      mock.reset();
      const body = JSON.stringify({ ...params, stream: true, max_tokens: 30 });
      const streamGate = deferred();
      current = streamGate;
      const streamsA = [rawStream(a.url, body), rawStream(a.url, body)];
      await until(() => mock.requests.length === 1, 5_000, 'A to stream from upstream');
      const streamsB = [rawStream(b.url, body), rawStream(b.url, body)];
      await until(() => b.flights.subscribers() === 2, 5_000, 'B streams to coalesce');
      await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, 'B to follow A\'s stream');
      streamGate.resolve();
      const texts = await Promise.all([...streamsA, ...streamsB].map((s) => s.done));
      assert.equal(mock.stats().byPath['POST /v1/messages'], 1);
      for (const t of texts) assert.equal(t, texts[0]);
      assert.match(texts[0] ?? '', /event: message_stop/);
      // Honest roles: every client on B got another instance's call, its local leader included.
      for (const s of streamsB) assert.equal((await s.headers)['x-gateway-coalesce-role'], 'follower');
      assert.equal((await streamsA[0]?.headers)?.['x-gateway-coalesce-role'], 'leader');
    });
  });

  test('the leader instance killed mid-stream: followers on the other instance fail cleanly, never hang', async () => {
    const mock = await createMockUpstream({ eventIntervalMs: 150 });
    const leader = await spawnLeader(mock, redis.url);
    const b = await gateway(mock, redis.url, { REDIS_CLAIM_TTL_MS: '600' });
    try {
      await redisAvailable([b]);
      const body = JSON.stringify({ ...params, stream: true, max_tokens: 40, messages: [{ role: 'user', content: 'leader dies' }] });
      const onA = rawStream(leader.url, body);
      await within(onA.received(), 5_000, 'the first bytes on A');
      const onB = rawStream(b.url, body);
      await within(onB.received(), 5_000, 'the first bytes on B');
      leader.kill();
      const text = await within(onB.done, 5_000, 'B\'s stream to end after the leader died');
      assert.equal(mock.stats().byPath['POST /v1/messages'], 1, 'B followed A instead of calling upstream');
      assert.equal(await metric(b.url, 'claude_tokens_total'), 0, 'B billed nothing for the call it only relayed');
      assert.equal(await metric(b.url, 'claude_tokens_saved_total'), 0, 'nor counted an interrupted answer as saved');
      assert.ok(!text.includes('event: message_stop'), 'the stream could not complete');
      assert.match(text, /event: error/, 'the follower got a clean Anthropic error event');
      await eventually(() => remoteGaugesAtZero(b.url), 5_000, 'B\'s remote-flight gauges back to zero');
    } finally {
      leader.kill();
      await b.shutdown();
      await mock.close();
    }
  });

  test('the leader instance killed before any answer: a follower takes over and its clients get the whole answer', async () => {
    const gate = deferred();
    const mock = await createMockUpstream({ onRequest: () => gate.promise });
    const leader = await spawnLeader(mock, redis.url);
    const b = await gateway(mock, redis.url, { REDIS_CLAIM_TTL_MS: '600' });
    try {
      await redisAvailable([b]);
      const body = { ...params, max_tokens: 21, messages: [{ role: 'user' as const, content: 'leader dies early' }] };
      new Anthropic({ apiKey: TEST_API_KEY, baseURL: leader.url, maxRetries: 0 }).messages.create(body).catch(() => undefined);
      await until(() => mock.requests.length === 1, 5_000, 'A to call upstream');
      const onB = client(b).messages.create(body);
      await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, 'B to follow A');
      leader.kill();
      await until(() => mock.requests.length === 2, 10_000, 'B to take over and call upstream itself');
      gate.resolve();
      const message = await within(onB, 5_000, 'B\'s answer');
      assert.equal(message.type, 'message');
      assert.equal(await metric(b.url, 'remote_flights_total', { role: 'takeover' }), 1);
      assert.equal(await metric(b.url, 'claude_tokens_total', { type: 'output' }), message.usage.output_tokens, 'B billed its own call once');
      await eventually(() => remoteGaugesAtZero(b.url), 5_000, 'B\'s remote-flight gauges back to zero');
    } finally {
      gate.resolve();
      leader.kill();
      await b.shutdown();
      await mock.close();
    }
  });

  test('Redis stopped mid-run: requests keep succeeding locally, shared mode returns with Redis', async () => {
    const mock = await createMockUpstream();
    await withPair({ upstreamUrl: mock.url, redisUrl: redis.url, env: RETRY_FAST, close: () => mock.close() }, async (a, b) => {
      assert.equal((await client(a).messages.create(params)).type, 'message');
      await redis.stop();
      try {
        for (let i = 0; i < 4; i++) {
          assert.equal((await client(a).messages.create({ ...params, max_tokens: 10 + i })).type, 'message');
          assert.equal((await client(b).messages.stream({ ...params, max_tokens: 10 + i }).finalMessage()).type, 'message');
        }
        assert.ok(sum(await scrape(a.url), 'redis_errors_total') >= 1);
      await redisAvailable([a, b], 0);
      } finally {
        await redis.start();
      }
      await redisAvailable([a, b]);
      assert.equal((await client(b).messages.create(params)).type, 'message');
    });
  });

  test('rate limits are shared across instances', async () => {
    await pairOn(await createMockUpstream(), redis.url, { RATE_LIMIT_RPM: '4' }, async (a, b) => {
      const key = `sk-ant-shared-limit-${Date.now()}`;
      for (const gw of [a, b, a, b]) assert.equal((await client(gw, key).messages.create({ ...params, max_tokens: 5 })).type, 'message');
      for (const gw of [a, b]) {
        await assert.rejects(client(gw, key).messages.create({ ...params, max_tokens: 6 }), (err: unknown) => err instanceof Anthropic.RateLimitError);
      }
      assert.equal((await client(b, `${key}-other`).messages.create(params)).type, 'message', 'another key is unaffected');
    });
  });

  test('with CACHE=on, an answer cached by one instance is served by the other', async () => {
    const mock = await createMockUpstream();
    await pairOn(mock, redis.url, { CACHE: 'on' }, async (a, b) => {
      const cached = { ...params, max_tokens: 33, messages: [{ role: 'user' as const, content: `shared cache ${Date.now()}` }] };
      const first = await client(a).messages.create(cached);
      // A writes to Redis after answering; wait for the entry itself, not for B to guess.
      const probe = createClient({ url: redis.url });
      await probe.connect();
      try {
        await eventually(async () => (await probe.keys('cgw:cache:*')).length > 0, 5_000, 'A\'s entry in the shared cache');
      } finally {
        probe.destroy();
      }
      const { data, response } = await client(b).messages.create(cached).withResponse();
      assert.equal(mock.stats().byPath['POST /v1/messages'], 1, 'B answered without an upstream call');
      assert.equal(response.headers.get('x-gateway-coalesce-role'), 'cache');
      assert.deepEqual(data, first);
    });
  });
});
