import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scrape, sum } from '../helpers/prom.js';
import { startStack } from '../helpers/stack.js';

const params = { model: 'claude-sonnet-5', max_tokens: 24, messages: [{ role: 'user' as const, content: 'cache me' }] };

describe('exact-match response cache (CACHE=on)', () => {
  test('repeats are served from the cache, plain and streamed; errors, cut streams, other tenants and opt-outs are not', async () => {
    const stack = await startStack({ env: { CACHE: 'on' } });
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
  test('a finished plain answer serves near-simultaneous arrivals; streams do not linger', async () => {
    const stack = await startStack({ env: { COALESCE_LINGER_MS: '60000' } });
    try {
      const client = stack.client();
      const a = await client.messages.create(params).withResponse();
      const b = await client.messages.create(params).withResponse();
      assert.equal(b.response.headers.get('x-gateway-coalesce-role'), 'follower');
      assert.deepEqual(b.data, a.data);
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 1);
      await client.messages.stream(params).finalMessage();
      await client.messages.stream(params).finalMessage();
      assert.equal(stack.mock.stats().byPath['POST /v1/messages'], 3);
      assert.equal(sum(await scrape(stack.gateway.url), 'coalesced_requests_total'), 1);
    } finally {
      await stack.close();
    }
  });
});
