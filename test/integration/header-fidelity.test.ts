import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stackForSuite, TEST_API_KEY } from '../helpers/stack.js';

const params = { model: 'claude-haiku-5-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'headers' }] };

describe('header fidelity', () => {
  const stack = stackForSuite();

  test('the SDK request headers reach upstream unchanged; gateway-only and hop-by-hop ones do not', async () => {
    const client = stack.client({
      defaultHeaders: {
        'anthropic-beta': 'feature-a-2026-01-01,feature-b-2026-02-02',
        'anthropic-workspace-id': 'wrkspc_1',
        'x-gateway-mode': 'agentic',
        'x-gateway-coalesce': 'off',
        'x-custom-trace': 'abc',
      },
    });
    await client.messages.create(params);
    const seen = stack.mock.requests.at(-1)?.headers;
    assert.ok(seen);
    assert.equal(seen.authorization, `Bearer ${TEST_API_KEY}`);
    assert.equal(seen['anthropic-version'], '2026-10-21');
    assert.equal(seen['anthropic-beta'], 'feature-a-2026-01-01,feature-b-2026-02-02');
    assert.equal(seen['anthropic-workspace-id'], 'wrkspc_1');
    assert.equal(seen['x-custom-trace'], 'abc');
    assert.match(String(seen['user-agent']), /Anthropic\/JS/);
    assert.equal(seen['x-stainless-retry-count'], '0');
    assert.equal(seen['x-gateway-mode'], undefined);
    assert.equal(seen['x-gateway-coalesce'], undefined);
    assert.equal(seen['accept-encoding'], 'identity', 'the gateway asks for readable bodies');
  });

  test('x-api-key (SDK 0.x style) is forwarded as sent', async () => {
    await fetch(`${stack.gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'sk-ant-old-style-key', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify(params),
    }).then((r) => r.arrayBuffer());
    const seen = stack.mock.requests.at(-1)?.headers;
    assert.equal(seen?.['x-api-key'], 'sk-ant-old-style-key');
    assert.equal(seen['anthropic-version'], '2023-06-01');
  });

  test('query strings and body bytes arrive unchanged (key order included)', async () => {
    const body = '{"max_tokens":16,"model":"claude-haiku-5-5","messages":[{"content":"héllo ✓","role":"user"}]}';
    await fetch(`${stack.gateway.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body,
    }).then((r) => r.arrayBuffer());
    const seen = stack.mock.requests.at(-1);
    assert.equal(seen?.path, '/v1/messages?beta=true');
    assert.equal(seen.body, body);
  });

  test('response headers the SDK and users rely on come back', async () => {
    const { response, data } = await stack.client().messages.create(params).withResponse();
    assert.equal(data.type, 'message');
    const direct = await fetch(`${stack.mock.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify(params),
    });
    await direct.arrayBuffer();
    assert.match(response.headers.get('request-id') ?? '', /^req_/);
    for (const [name] of direct.headers) {
      if (name.startsWith('anthropic-')) assert.ok(response.headers.get(name) !== null, `${name} forwarded`);
    }
    assert.equal(response.headers.get('x-powered-by'), null);
  });

  test('a gzip-compressed upstream answer is decoded so the gateway can read it, and the client gets valid JSON', async () => {
    const client = stack.client({ defaultHeaders: { 'x-mock-fault': 'gzip' } });
    const { response, data } = await client.messages.create(params).withResponse();
    assert.equal(data.type, 'message');
    assert.equal(response.headers.get('content-encoding'), null);
    const streamed = await client.messages.stream(params).finalMessage();
    assert.equal(streamed.type, 'message');
  });
});
