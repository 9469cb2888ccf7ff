import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deferred, until } from '../helpers/deferred.js';
import { scrape, sum } from '../helpers/prom.js';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';
import { startStack } from '../helpers/stack.js';

const TYPES = { input: 'input_tokens', output: 'output_tokens', cache_creation: 'cache_creation_input_tokens', cache_read: 'cache_read_input_tokens' } as const;

function params(content: string, model = 'claude-sonnet-5') {
  return {
    model,
    max_tokens: 40,
    // Past the minimum cacheable length (1,024 tokens for Sonnet; the mock caches like the API).
    system: [{ type: 'text' as const, text: 'You are a careful assistant. '.repeat(150), cache_control: { type: 'ephemeral' as const } }],
    messages: [{ role: 'user' as const, content }],
  };
}

describe('token accounting', () => {
  test('claude_tokens_total equals the upstream billed usage per mode, model and type: plain, streamed, coalesced and failed calls', async () => {
    const gate = deferred();
    let hold = false;
    const stack = await startStack({ mock: { onRequest: () => (hold ? gate.promise : undefined) } });
    try {
      const chat = stack.client({ defaultHeaders: { 'x-gateway-mode': 'chat' } });
      const agent = stack.client({ defaultHeaders: { 'x-gateway-mode': 'agent' } });
      await chat.messages.create(params('plain one'));
      await chat.messages.create(params('plain two', 'claude-haiku-5-5'));
      await agent.messages.stream(params('streamed one')).finalMessage();
      await agent.messages.stream(params('streamed two', 'claude-opus-5')).finalMessage();
      const failing = stack.client({ defaultHeaders: { 'x-gateway-mode': 'agent', 'x-mock-fault': 'midstream-error' } });
      await assert.rejects(failing.messages.stream(params('fails mid-way')).finalMessage());

      // Five identical calls in flight together: billed once, four deliveries saved.
      hold = true;
      const coalesced = Array.from({ length: 5 }, () => chat.messages.create(params('shared question')));
      await until(() => stack.gateway.flights.subscribers() === 5, 5_000, 'five to share a flight');
      gate.resolve();
      const shared = await Promise.all(coalesced);

      const billed = stack.mock.stats().usageByModel;
      const samples = await scrape(stack.gateway.url);
      for (const [model, usage] of Object.entries(billed)) {
        for (const [type, field] of Object.entries(TYPES)) {
          assert.equal(sum(samples, 'claude_tokens_total', { model, type }), usage[field], `${model} ${type}`);
        }
      }
      const totalBilled = Object.values(billed).reduce((a, u) => a + u.input_tokens + u.output_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens, 0);
      assert.equal(sum(samples, 'claude_tokens_total'), totalBilled);
      assert.ok(sum(samples, 'claude_tokens_total', { mode: 'agent', type: 'output' }) > 0);
      assert.ok(sum(samples, 'claude_tokens_total', { mode: 'chat', type: 'cache_read' }) > 0, 'the repeated cached prefix is read');

      const one = shared[0]?.usage;
      assert.ok(one);
      assert.equal(sum(samples, 'claude_tokens_saved_total', { source: 'coalesced', type: 'output', mode: 'chat' }), 4 * one.output_tokens);
      assert.equal(sum(samples, 'claude_tokens_saved_total', { source: 'coalesced', type: 'input' }), 4 * one.input_tokens);
      assert.equal(sum(samples, 'coalesced_requests_total', { endpoint: 'messages', mode: 'chat' }), 4);
      assert.equal(sum(samples, 'claude_api_calls_total', { endpoint: 'messages', status: 'error' }), 1);
      assert.equal(sum(samples, 'claude_api_calls_total', { endpoint: 'messages', status: '200' }), 5);
      assert.ok(sum(samples, 'claude_api_ttft_seconds_count', { mode: 'agent' }) >= 2);
      assert.ok(sum(samples, 'claude_cost_usd_total', { mode: 'chat', model: 'claude-sonnet-5' }) > 0);
      assert.equal(sum(samples, 'http_requests_total', { route: '/v1/messages', status: '200' }), 10);
    } finally {
      gate.resolve();
      await stack.close();
    }
  });

  test('label values are bounded: modes beyond MAX_MODES and unknown routes collapse', async () => {
    // Identical calls in other modes must each reach upstream (the mode is not part of the fingerprint): no lingering.
    const stack = await startStack({ env: { MAX_MODES: '2', COALESCE_LINGER_MS: '0' } });
    try {
      for (const mode of ['alpha', 'beta', 'gamma', 'delta']) {
        await stack.client({ defaultHeaders: { 'x-gateway-mode': mode } }).messages.countTokens({ model: 'claude-sonnet-5', messages: [{ role: 'user', content: 'x' }] });
      }
      for (let i = 0; i < 5; i++) await fetch(`${stack.gateway.url}/random/path/${i}`).then((r) => r.arrayBuffer());
      const samples = await scrape(stack.gateway.url);
      const modes = new Set(samples.filter((s) => s.name === 'claude_api_calls_total').map((s) => s.labels.mode));
      // The unknown paths (no mode header) reached upstream as `default`: the gateway's own name takes no slot.
      assert.deepEqual([...modes].sort(), ['alpha', 'beta', 'default', 'other']);
      assert.equal(sum(samples, 'http_requests_total', { route: 'other' }), 5);
      assert.ok(!samples.some((s) => s.labels.route?.startsWith('/random')));
    } finally {
      await stack.close();
    }
  });

  test('mode labels are earned, not squatted: unauthenticated junk modes take no slot; a real client\'s mode is its own label', async () => {
    const gatewayKey = 'gateway-key-modes-0123456789';
    const stack = await startStack({ env: { GATEWAY_API_KEYS: gatewayKey, CACHE: 'on' } });
    try {
      const url = stack.gateway.url;
      const junkBody = JSON.stringify(params('junk'));
      // More junk modes than MAX_MODES (20), on every kind of request that upstream never answered with a 2xx.
      for (let i = 0; i < 25; i++) {
        const mode = `junk${i}`;
        const noGatewayKey = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gateway-mode': mode }, body: junkBody });
        assert.equal(noGatewayKey.status, 401);
        await noGatewayKey.arrayBuffer();
        const health = await fetch(`${url}/healthz`, { headers: { 'x-gateway-mode': mode } });
        assert.equal(health.status, 200);
        await health.arrayBuffer();
        assert.equal((await rawExchange(url, rawRequest('GET', '/v1/../v1/models', { 'x-gateway-mode': mode }))).status, 400, 'a refused path');
        // Past the gateway key but without an Anthropic key: upstream answers 401.
        const noCredential = await fetch(`${url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-gateway-api-key': gatewayKey, 'x-gateway-mode': mode },
          body: junkBody,
        });
        assert.equal(noCredential.status, 401);
        await noCredential.arrayBuffer();
      }
      const real = stack.client({ defaultHeaders: { 'x-gateway-api-key': gatewayKey, 'x-gateway-mode': 'real-client' } });
      await real.messages.create(params('first real call'));
      const cached = await real.messages.create(params('first real call')).withResponse();
      assert.equal(cached.response.headers.get('x-gateway-coalesce-role'), 'cache');

      const samples = await scrape(url);
      assert.equal(sum(samples, 'claude_api_calls_total', { mode: 'real-client', status: '200' }), 1);
      assert.ok(sum(samples, 'claude_tokens_total', { mode: 'real-client' }) > 0);
      assert.equal(sum(samples, 'cache_hits_total', { mode: 'real-client' }), 1, 'counted under its own label once earned');
      assert.equal(sum(samples, 'claude_api_calls_total', { mode: 'other', status: '401' }), 25, 'upstream 401s count as other');
      assert.ok(!samples.some((s) => s.labels.mode?.startsWith('junk')), 'no junk mode is a label');
    } finally {
      await stack.close();
    }
  });

  test('a MODES allowlist maps everything else to other', async () => {
    const stack = await startStack({ env: { MODES: 'chat,batch' } });
    try {
      for (const mode of ['chat', 'nope']) {
        await stack.client({ defaultHeaders: { 'x-gateway-mode': mode } }).messages.create(params(mode));
      }
      await stack.client().messages.create(params('no mode'));
      const samples = await scrape(stack.gateway.url);
      const modes = new Set(samples.filter((s) => s.name === 'claude_tokens_total').map((s) => s.labels.mode));
      assert.deepEqual([...modes].sort(), ['chat', 'default', 'other']);
    } finally {
      await stack.close();
    }
  });
});
