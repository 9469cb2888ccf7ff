import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { freePort } from '../helpers/ports.js';
import { deferred, until } from '../helpers/deferred.js';
import { stackForSuite, startStack, TEST_API_KEY } from '../helpers/stack.js';

const params = {
  model: 'claude-sonnet-5',
  max_tokens: 32,
  messages: [{ role: 'user' as const, content: 'hi' }],
};

interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01', ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function assertAnthropicError(answer: RawAnswer, status: number, type: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /application\/json/);
  const body = JSON.parse(answer.text) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, type);
  assert.ok(body.error.message.length > 0);
}

describe('upstream errors pass through unchanged', () => {
  const stack = stackForSuite();

  for (const [status, type, ErrorClass] of [
    [400, 'invalid_request_error', Anthropic.BadRequestError],
    [401, 'authentication_error', Anthropic.AuthenticationError],
    [429, 'rate_limit_error', Anthropic.RateLimitError],
    [500, 'api_error', Anthropic.InternalServerError],
    [529, 'overloaded_error', Anthropic.InternalServerError],
  ] as const) {
    test(`${status} ${type}: same bytes, status and headers as direct; the SDK raises ${ErrorClass.name}`, async () => {
      const body = JSON.stringify(params);
      const viaGateway = await post(`${stack.gateway.url}/v1/messages`, body, { 'x-mock-status': String(status) });
      const viaDirect = await post(`${stack.mock.url}/v1/messages`, body, { 'x-mock-status': String(status) });
      assert.equal(viaGateway.status, status);
      assert.equal(viaGateway.text.replace(/req_mock_\w+/g, 'ID'), viaDirect.text.replace(/req_mock_\w+/g, 'ID'));
      assertAnthropicError(viaGateway, status, type);
      assert.equal(viaGateway.headers.get('retry-after'), viaDirect.headers.get('retry-after'));

      const client = stack.client({ defaultHeaders: { 'x-mock-status': String(status) } });
      await assert.rejects(client.messages.create(params), (err: unknown) => {
        assert.ok(err instanceof ErrorClass, `expected ${ErrorClass.name}, got ${String(err)}`);
        assert.equal(err.status, status);
        assert.match(String(err.requestID), /^req_/);
        if (status === 429) assert.ok(err.headers.get('retry-after') !== null, '429 keeps retry-after');
        return true;
      });
    });
  }
});

describe('errors the gateway raises itself are Anthropic-shaped', () => {
  const stack = stackForSuite({ env: { MAX_BODY_BYTES: '1024', UPSTREAM_HEADERS_TIMEOUT_MS: '300' } });

  test("the gateway's own endpoints answer other methods with an Anthropic-shaped 405", async () => {
    const answer = await post(`${stack.gateway.url}/healthz`, '{}');
    assertAnthropicError(answer, 405, 'invalid_request_error');
    assert.equal(answer.headers.get('allow'), 'GET');
  });

  test("HEAD on the gateway's own endpoints gets GET's head without a body; OPTIONS gets the 405 too", async () => {
    for (const path of ['/healthz', '/readyz?probe=1']) {
      const get = await fetch(`${stack.gateway.url}${path}`);
      const getBody = await get.text();
      const head = await fetch(`${stack.gateway.url}${path}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(getBody)));
      assert.equal(await head.text(), '');
    }
    const options = await fetch(`${stack.gateway.url}/metrics`, { method: 'OPTIONS' });
    assertAnthropicError({ status: options.status, headers: options.headers, text: await options.text() }, 405, 'invalid_request_error');
    assert.equal(options.headers.get('allow'), 'GET');
  });

  test('malformed JSON: 400 invalid_request_error, nothing sent upstream', async () => {
    const before = stack.mock.stats().requests;
    assertAnthropicError(await post(`${stack.gateway.url}/v1/messages`, '{"model": '), 400, 'invalid_request_error');
    assert.equal(stack.mock.stats().requests, before);
  });

  test('body over MAX_BODY_BYTES: 413 request_too_large, declared or streamed', async () => {
    const big = JSON.stringify({ ...params, messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
    assertAnthropicError(await post(`${stack.gateway.url}/v1/messages`, big), 413, 'request_too_large');
    const client = stack.client();
    await assert.rejects(client.messages.create({ ...params, messages: [{ role: 'user', content: 'y'.repeat(4096) }] }), (err: unknown) => {
      assert.ok(err instanceof Anthropic.APIError);
      assert.equal(err.status, 413);
      return true;
    });
    // The gateway still serves normal requests afterwards.
    assert.equal((await client.messages.create(params)).type, 'message');
  });

  test('upstream headers timeout: 504 timeout_error', async () => {
    const answer = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params), { 'x-mock-fault': 'stall' });
    assertAnthropicError(answer, 504, 'timeout_error');
  });

  test('upstream resets the connection before answering: 502 api_error', async () => {
    const answer = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params), { 'x-mock-fault': 'reset' });
    assertAnthropicError(answer, 502, 'api_error');
  });

  test('a stream cut mid-way ends with an SSE error event the SDK raises', async () => {
    const client = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-reset' } });
    await assert.rejects(client.messages.stream(params).finalMessage(), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /interrupted|api_error/);
      return true;
    });
  });

  test('a mid-stream error event from upstream reaches the client unchanged', async () => {
    const client = stack.client({ defaultHeaders: { 'x-mock-fault': 'midstream-error' } });
    await assert.rejects(client.messages.stream(params).finalMessage(), /overloaded/i);
  });
});

describe('upstream unreachable', () => {
  test('connection refused: 502 api_error', async () => {
    // A port that was free a moment ago and now has no listener.
    const port = await freePort();
    const stack = await startStack({ env: { UPSTREAM_URL: `http://127.0.0.1:${port}` } });
    try {
      assertAnthropicError(await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params)), 502, 'api_error');
      await assert.rejects(stack.client().messages.create(params), (err: unknown) => {
        assert.ok(err instanceof Anthropic.APIError);
        assert.equal(err.status, 502);
        return true;
      });
    } finally {
      await stack.close();
    }
  });
});

describe('gateway API keys', () => {
  test('GATEWAY_API_KEYS admits only listed keys; an injected upstream key replaces the client key', async () => {
    const gatewayKey = 'gw-key-0123456789abcdef';
    const stack = await startStack({ env: { GATEWAY_API_KEYS: gatewayKey, ANTHROPIC_API_KEY: 'sk-ant-upstream-secret' } });
    try {
      await assert.rejects(stack.client({ apiKey: 'gw-key-wrong-wrong-wrong' }).messages.create(params), (err: unknown) => {
        assert.ok(err instanceof Anthropic.AuthenticationError);
        return true;
      });
      const message = await stack.client({ apiKey: gatewayKey }).messages.create(params);
      assert.equal(message.type, 'message');
      const last = stack.mock.requests.at(-1);
      assert.equal(last?.headers['x-api-key'], 'sk-ant-upstream-secret');
      assert.equal(last.headers.authorization, undefined, 'the gateway key never goes upstream');
      assert.ok(!stack.logs.text().includes('sk-ant-upstream-secret'));
      assert.ok(!stack.logs.text().includes(gatewayKey));
    } finally {
      await stack.close();
    }
  });
});

describe('capacity', () => {
  test('past MAX_CONCURRENT_REQUESTS the API answers 529 overloaded_error at once; health stays up; capacity returns', async () => {
    const gate = deferred();
    const stack = await startStack({ env: { MAX_CONCURRENT_REQUESTS: '2' }, mock: { onRequest: () => gate.promise } });
    try {
      const held = [0, 1].map((i) => post(`${stack.gateway.url}/v1/messages`, JSON.stringify({ ...params, max_tokens: 10 + i })));
      await until(() => stack.mock.requests.length === 2, 5_000, 'two requests in flight');
      const refused = await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params));
      assertAnthropicError(refused, 529, 'overloaded_error');
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(stack.mock.requests.length, 2, 'the refused request never went upstream');
      assert.equal((await fetch(`${stack.gateway.url}/healthz`)).status, 200);
      gate.resolve();
      for (const answer of await Promise.all(held)) assert.equal(answer.status, 200);
      assert.equal((await post(`${stack.gateway.url}/v1/messages`, JSON.stringify(params))).status, 200);
    } finally {
      gate.resolve();
      await stack.close();
    }
  });
});
