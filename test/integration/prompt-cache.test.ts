import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { createMockUpstream, type MockUpstream } from '../../tools/mock-upstream/index.js';
import { scrape, sum } from '../helpers/prom.js';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, redisAvailable, SHARED_TENANT_HASH_KEY } from '../helpers/scale-out.js';
import { startStack, startTestGateway } from '../helpers/stack.js';
import { startUpstreamsGateway, type UpstreamsStack } from '../helpers/upstreams-stack.js';

/** Prompt caching through the gateway: the mock caches like the API (tools/mock-upstream/prompt-cache.ts). */

const MODEL = 'claude-sonnet-5';
/** About 2,000 tokens: past the 1,024-token minimum. */
const SYSTEM = 'You are a careful assistant working on a large code base. '.repeat(140);

const GATEWAY_KEY = 'gw-key-0123456789abcdef';
const KEYS = { TEST_KEY_A: 'sk-key-a-0123456789', TEST_KEY_B: 'sk-key-b-0123456789', TEST_KEY_C: 'sk-key-c-0123456789' };
const NAMES = ['key-a', 'key-b', 'key-c'] as const;

/** A Claude Code turn: tools and a per-project system prompt with a breakpoint, the growing conversation with one on its last message. */
function turn(project: string, messages: string[]) {
  return {
    model: MODEL,
    max_tokens: 16,
    tools: [{ name: 'read_file', description: 'Reads a file of the project. '.repeat(40), input_schema: { type: 'object' as const, properties: { path: { type: 'string' } } } }],
    system: [{ type: 'text' as const, text: `${SYSTEM}\nWorking directory: /work/${project}`, cache_control: { type: 'ephemeral' as const } }],
    messages: messages.map((text, i) => ({
      role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
      content: [{ type: 'text' as const, text, ...(i === messages.length - 1 ? { cache_control: { type: 'ephemeral' as const } } : {}) }],
    })),
  };
}

/** Upstream entries for three gateway-held keys, one mock each (faults are per upstream). */
function threeKeys(mocks: MockUpstream[]) {
  return mocks.map((m, i) => ({ name: NAMES[i] as string, url: m.url, api_key_env: Object.keys(KEYS)[i] as string }));
}

describe('prompt caching', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  async function mocks(n: number): Promise<MockUpstream[]> {
    const list: MockUpstream[] = [];
    for (let i = 0; i < n; i++) {
      const m = await createMockUpstream();
      cleanup.push(() => m.close());
      list.push(m);
    }
    return list;
  }
  async function gateway(...args: Parameters<typeof startUpstreamsGateway>): Promise<UpstreamsStack> {
    const g = await startUpstreamsGateway(...args);
    cleanup.push(() => g.close());
    return g;
  }
  /** Sends one turn; returns which key served it and the usage. */
  async function send(client: Anthropic, body: ReturnType<typeof turn>): Promise<{ upstream: string; status: number; usage: Anthropic.Usage | undefined }> {
    try {
      const { data, response } = await client.messages.create(body).withResponse();
      return { upstream: response.headers.get('x-gateway-upstream') ?? '', status: response.status, usage: data.usage };
    } catch (err) {
      if (err instanceof Anthropic.APIError) return { upstream: '', status: Number(err.status), usage: undefined };
      throw err;
    }
  }

  test('through the gateway with the official SDK, a second call with the same cached prefix reads it from the cache', async () => {
    const stack = await startStack();
    cleanup.push(() => stack.close());
    const client = stack.client();
    const ask = (question: string) =>
      client.messages.create({
        model: MODEL,
        max_tokens: 20,
        system: [{ type: 'text', text: SYSTEM, cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: question }],
      });
    const first = await ask('first question');
    const prefixTokens = Math.ceil(SYSTEM.length / 4);
    assert.equal(first.usage.cache_creation_input_tokens, prefixTokens);
    assert.equal(first.usage.cache_read_input_tokens, 0);
    const second = await ask('second question');
    assert.equal(second.usage.cache_read_input_tokens, prefixTokens, 'the prefix is read from the cache');
    assert.equal(second.usage.cache_creation_input_tokens, 0);
    assert.equal(second.usage.input_tokens, Math.ceil('second question'.length / 4));
  });

  test('affinity: one session stays on the key that holds its prefix warm (reads), and yields to an open breaker', async () => {
    const upstreams = await mocks(3);
    const stack = await gateway(threeKeys(upstreams), { GATEWAY_API_KEYS: GATEWAY_KEY, ...KEYS, FAILOVER_MAX_ATTEMPTS: '1', UPSTREAM_RETRIES: '0', BREAKER_VOLUME_THRESHOLD: '2', BREAKER_ERROR_THRESHOLD: '50', BREAKER_WINDOW_MS: '60000', BREAKER_RESET_TIMEOUT_MS: '60000' }, GATEWAY_KEY);
    const client = stack.client();
    const history = ['open the README'];
    const first = await send(client, turn('alpha', history));
    assert.equal(first.status, 200);
    const warm = first.upstream;
    assert.ok(NAMES.includes(warm as (typeof NAMES)[number]), warm);
    for (let i = 0; i < 4; i++) {
      history.push(`answer ${i}`, `question ${i}`);
      const next = await send(client, turn('alpha', history));
      assert.equal(next.upstream, warm, `turn ${i + 2} stays on ${warm}`);
      assert.ok((next.usage?.cache_read_input_tokens ?? 0) > 0, 'and reads its cache');
    }
    let samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'cache_affinity_total', { result: 'hit' }), 4);
    assert.equal(sum(samples, 'cache_affinity_total', { result: 'miss' }), 1);

    // The warm key fails: 529s (no failover: FAILOVER_MAX_ATTEMPTS=1) until its breaker for the model opens.
    const sick = upstreams[NAMES.indexOf(warm as (typeof NAMES)[number])] as MockUpstream;
    sick.setFaults({ status: 529 });
    const open = async (): Promise<boolean> => sum(await scrape(stack.gateway.url), 'circuit_breaker_state', { breaker: `${warm}/${MODEL}` }) === 2;
    for (let i = 0; i < 10 && !(await open()); i++) assert.equal((await send(client, turn('alpha', [...history, `failing ${i}`]))).status, 529);
    assert.ok(await open(), 'the breaker opened');
    const asked = sick.stats().requests;
    const moved = await send(client, turn('alpha', [...history, 'after the outage']));
    assert.equal(moved.status, 200, 'no client-visible error: the call moved');
    assert.notEqual(moved.upstream, warm);
    assert.equal(sick.stats().requests, asked, 'the key behind the open breaker was not asked');
    samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'cache_affinity_total', { result: 'moved', reason: 'circuit_open' }), 1);
    // The session now lives where it moved.
    const after = await send(client, turn('alpha', [...history, 'after the outage', 'ok', 'go on']));
    assert.equal(after.upstream, moved.upstream);
  });

  test('affinity yields to a key resting after a 429', async () => {
    const upstreams = await mocks(3);
    const stack = await gateway(threeKeys(upstreams), { GATEWAY_API_KEYS: GATEWAY_KEY, ...KEYS, FAILOVER_MAX_ATTEMPTS: '1', UPSTREAM_RETRIES: '0', BREAKER: 'off' }, GATEWAY_KEY);
    const client = stack.client();
    const first = await send(client, turn('beta', ['hello']));
    const warm = first.upstream;
    const limited = upstreams[NAMES.indexOf(warm as (typeof NAMES)[number])] as MockUpstream;
    limited.setFaults({ status: 429, retryAfter: '30' });
    const refused = await send(client, turn('beta', ['hello', 'hi', 'next']));
    assert.equal(refused.status, 429, 'no failover allowed here: the 429 reaches the client and rests the key');
    const asked = limited.stats().requests;
    const moved = await send(client, turn('beta', ['hello', 'hi', 'again']));
    assert.equal(moved.status, 200);
    assert.notEqual(moved.upstream, warm);
    assert.equal(limited.stats().requests, asked, 'the resting key was not asked');
    const samples = await scrape(stack.gateway.url);
    assert.equal(sum(samples, 'cache_affinity_total', { result: 'moved', reason: 'rested' }), 1);
  });

  test('two instances on Redis route one session to one key', async () => {
    const upstreams = await mocks(3);
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const env = { UPSTREAMS: JSON.stringify(threeKeys(upstreams)), GATEWAY_API_KEYS: GATEWAY_KEY, ...KEYS, REDIS_URL: redis.url, TENANT_HASH_KEY: SHARED_TENANT_HASH_KEY };
    const a = await startTestGateway(env);
    cleanup.push(async () => {
      await a.shutdown();
    });
    const b = await startTestGateway(env);
    cleanup.push(async () => {
      await b.shutdown();
    });
    await redisAvailable([a, b]);
    const affinityUp = async (url: string): Promise<boolean> => (await scrape(url)).some((s) => s.name === 'redis_domain_available' && s.labels.domain === 'affinity' && s.value === 1);
    for (const gw of [a, b]) await eventually(() => affinityUp(gw.url), 10_000, 'the affinity connection to be up');
    const clients = [a, b].map((gw) => new Anthropic({ apiKey: GATEWAY_KEY, baseURL: gw.url, maxRetries: 0 }));
    // Several sessions, so that a random spread would split them over the keys.
    for (const project of ['p1', 'p2', 'p3', 'p4']) {
      const history = ['start'];
      const served = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const reply = await send(clients[i % 2] as Anthropic, turn(project, history));
        assert.equal(reply.status, 200);
        served.add(reply.upstream);
        history.push(`answer ${i}`, `question ${i}`);
      }
      assert.equal(served.size, 1, `session ${project} was served by ${[...served].join(', ')}`);
    }
    const hitsOnB = sum(await scrape(b.url), 'cache_affinity_total', { result: 'hit' });
    assert.ok(hitsOnB >= 4, 'instance B found the key A chose through Redis');
  });
});
