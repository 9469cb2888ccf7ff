import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scrape, sum } from '../helpers/prom.js';
import { until } from '../helpers/deferred.js';
import { startStack } from '../helpers/stack.js';
import { loadConfig } from '../../src/config.js';

const params = { model: 'claude-sonnet-5', max_tokens: 24, messages: [{ role: 'user' as const, content: 'cache me' }] };

describe('exact-match response cache (CACHE=on)', () => {
  test('repeats are served from the cache, plain and streamed; errors, cut streams, other tenants and opt-outs are not', async () => {
    // About the cache alone: the cache-opted-out repeat must reach upstream, not a lingering answer (COALESCE_LINGER_MS=0).
    const stack = await startStack({ env: { CACHE: 'on', COALESCE_LINGER_MS: '0' } });
    try {
      const client = stack.client();
      const first = await client.messages.create(params).withResponse();
      const second = await client.messages.create(params).withResponse();
      assert.equal(first.response.headers.get('x-gateway-coalesce-role'), 'leader');
      assert.equal(second.response.headers.get('x-gateway-coalesce-role'), 'cache');
      assert.deepEqual(second.data, first.data);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 1);

      const streamed = await client.messages.stream({ ...params, max_tokens: 25 }).finalMessage();
      const replayed = client.messages.stream({ ...params, max_tokens: 25 });
      const events: string[] = [];
      replayed.on('streamEvent', (e) => events.push(e.type));
      assert.deepEqual(await replayed.finalMessage(), streamed, 'a cached stream replays as SSE');
      assert.equal(events.at(-1), 'message_stop');
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 2);

      const failing = stack.client({ defaultHeaders: { 'x-mock-status': '500' } });
      for (let i = 0; i < 2; i++) await failing.messages.create({ ...params, max_tokens: 26 }).catch(() => undefined);
      const cut = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-error' } });
      for (let i = 0; i < 2; i++) await cut.messages.stream({ ...params, max_tokens: 27 }).finalMessage().catch(() => undefined);
      await stack.client({ apiKey: 'sk-ant-other-tenant-000000' }).messages.create(params);
      await stack.client({ defaultHeaders: { 'x-gateway-cache': 'off' } }).messages.create(params);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 2 + 2 + 2 + 1 + 1);

      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'cache_hits_total'), 2);
      assert.equal(sum(samples, 'claude_tokens_saved_total', { source: 'cache', type: 'output' }), first.data.usage.output_tokens + streamed.usage.output_tokens);
    } finally {
      await stack.close();
    }
  });
});

describe('COALESCE_LINGER_MS', () => {
  test('defaults to a 100 ms window; 0 turns it off', () => {
    assert.equal(loadConfig({}).coalesceLingerMs, 100);
    assert.equal(loadConfig({ COALESCE_LINGER_MS: '0' }).coalesceLingerMs, 0);
    assert.equal(loadConfig({}).coalesceLingerCatchUpMs, 2_000);
    assert.throws(() => loadConfig({ COALESCE_LINGER_CATCHUP_MS: 'soon' }), /COALESCE_LINGER_CATCHUP_MS/);
  });

  test('past the window, an answer serves identical arrivals only while the gateway has not been idle since the call ended', async () => {
    // The gateway's view of its event loop is substituted: `idle` stands still as if the loop had been
    // busy since the call ended (a burst still being read), and moves as if it had waited for input.
    let idle = 0;
    const stack = await startStack({ env: { COALESCE_LINGER_MS: '20', COALESCE_LINGER_CATCHUP_MS: '60000' }, gateway: { loopIdleMs: () => idle } });
    const upstreamCalls = (): number => stack.mock.stats().byPath['POST /v1/messages'] ?? 0;
    try {
      const client = stack.client();
      const first = await client.messages.create(params).withResponse();
      assert.equal(first.response.headers.get('x-gateway-coalesce-role'), 'leader');
      // Well past the 20 ms window (a deadline that has certainly passed, not a race).
      const windowEnd = performance.now() + 60;
      await until(() => performance.now() > windowEnd, 5_000, 'the window to pass');
      const late = await client.messages.create(params).withResponse();
      assert.equal(late.response.headers.get('x-gateway-coalesce-role'), 'follower', 'still busy since the call ended: served the lingering answer');
      assert.deepEqual(late.data, first.data);
      assert.equal(upstreamCalls(), 1);
      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'coalesce_linger_catchup_total'), 1, 'served past the window: counted');
      assert.equal(sum(samples, 'coalesced_requests_total'), 1);
      idle += 1;
      const after = await client.messages.create(params).withResponse();
      assert.equal(after.response.headers.get('x-gateway-coalesce-role'), 'leader', 'the gateway waited for input once: a new arrival makes a new call');
      assert.equal(upstreamCalls(), 2);
    } finally {
      await stack.close();
    }
  });

  test('a finished complete 2xx answer, plain or stream, serves identical arrivals of the same tenant as a follower', async () => {
    const stack = await startStack({ env: { COALESCE_LINGER_MS: '60000' } });
    const upstreamCalls = (): number => stack.mock.stats().byPath['POST /v1/messages'] ?? 0;
    try {
      const client = stack.client();
      const a = await client.messages.create(params).withResponse();
      const b = await client.messages.create(params).withResponse();
      assert.equal(a.response.headers.get('x-gateway-coalesce-role'), 'leader');
      assert.equal(b.response.headers.get('x-gateway-coalesce-role'), 'follower');
      assert.deepEqual(b.data, a.data);
      assert.equal(upstreamCalls(), 1);

      const streamParams = { ...params, max_tokens: 30 };
      const first = await client.messages.stream(streamParams).withResponse();
      const firstMessage = await first.data.finalMessage();
      const again = client.messages.stream(streamParams);
      const events: string[] = [];
      again.on('streamEvent', (e) => events.push(e.type));
      const role = (await again.withResponse()).response.headers.get('x-gateway-coalesce-role');
      assert.deepEqual(await again.finalMessage(), firstMessage, 'a lingering stream replays as SSE, byte for byte');
      assert.equal(role, 'follower');
      assert.equal(events[0], 'message_start');
      assert.equal(events.at(-1), 'message_stop');
      assert.equal(upstreamCalls(), 2);

      const samples = await scrape(stack.gateway.url);
      assert.equal(sum(samples, 'coalesced_requests_total'), 2);
      assert.equal(sum(samples, 'coalesce_linger_catchup_total'), 0, 'within the window: not a catch-up');
      assert.equal(sum(samples, 'claude_tokens_saved_total', { source: 'coalesced', type: 'output' }), a.data.usage.output_tokens + firstMessage.usage.output_tokens);
      assert.equal(sum(samples, 'claude_tokens_saved_total', { source: 'cache' }), 0, 'a lingering answer is coalescing, not the cache');
    } finally {
      await stack.close();
    }
  });

  test('errors, cut streams, other tenants and opted-out requests never get a lingering answer', async () => {
    const stack = await startStack({ env: { COALESCE_LINGER_MS: '60000' } });
    const upstreamCalls = (): number => stack.mock.stats().byPath['POST /v1/messages'] ?? 0;
    try {
      const failing = stack.client({ defaultHeaders: { 'x-mock-status': '500' } });
      for (let i = 0; i < 2; i++) await assert.rejects(failing.messages.create({ ...params, max_tokens: 31 }));
      assert.equal(upstreamCalls(), 2, 'a 5xx answer does not linger');

      const cut = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-error' } });
      for (let i = 0; i < 2; i++) await assert.rejects(cut.messages.stream({ ...params, max_tokens: 32 }).finalMessage());
      assert.equal(upstreamCalls(), 4, 'a stream that ended in an error event does not linger');

      await stack.client().messages.create(params);
      const other = await stack.client({ apiKey: 'sk-ant-other-tenant-000000' }).messages.create(params).withResponse();
      assert.equal(other.response.headers.get('x-gateway-coalesce-role'), 'leader', 'another tenant never reads this one\'s answer');
      const optOut = await stack.client({ defaultHeaders: { 'x-gateway-coalesce': 'off' } }).messages.create(params).withResponse();
      assert.equal(optOut.response.headers.get('x-gateway-coalesce-role'), 'bypass');
      assert.equal(upstreamCalls(), 7);
      assert.equal(sum(await scrape(stack.gateway.url), 'coalesced_requests_total'), 0);
    } finally {
      await stack.close();
    }
  });
});
