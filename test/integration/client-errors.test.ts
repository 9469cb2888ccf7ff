import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stackForSuite, TEST_API_KEY } from '../helpers/stack.js';
import { rawExchange, type RawAnswer } from '../helpers/raw-http.js';

/**
 * Every request Node's HTTP parser refuses gets the Anthropic error body and `connection: close`
 * (server.on('clientError')), never an empty answer; nothing reaches upstream, and the gateway
 * serves the next client as before. Raw node:net: no HTTP client would send these bytes.
 */

function assertAnthropicClose(answer: RawAnswer, status: number, type: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer));
  assert.equal(answer.headers.connection, 'close');
  assert.match(answer.headers['content-type'] ?? '', /application\/json/);
  const body = JSON.parse(answer.body) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, type);
  assert.ok(body.error.message.length > 0);
}

const AUTH = `x-api-key: ${TEST_API_KEY}\r\nanthropic-version: 2023-06-01\r\n`;

const CASES: { name: string; bytes: string; status: number; type: string }[] = [
  { name: 'malformed request line (bad protocol)', bytes: 'GET /v1/models HTTX/1.1\r\nhost: x\r\n\r\n', status: 400, type: 'invalid_request_error' },
  { name: 'malformed request line (no target)', bytes: 'GET\r\nhost: x\r\n\r\n', status: 400, type: 'invalid_request_error' },
  { name: 'unknown method', bytes: 'FROBNICATE /v1/models HTTP/1.1\r\nhost: x\r\n\r\n', status: 400, type: 'invalid_request_error' },
  {
    name: 'bad chunked encoding',
    bytes: `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${AUTH}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    status: 400,
    type: 'invalid_request_error',
  },
  {
    name: 'conflicting content-length',
    bytes: `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${AUTH}content-type: application/json\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}`,
    status: 400,
    type: 'invalid_request_error',
  },
  {
    name: 'content-length together with transfer-encoding',
    bytes: `POST /v1/messages HTTP/1.1\r\nhost: x\r\n${AUTH}content-type: application/json\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    status: 400,
    type: 'invalid_request_error',
  },
  { name: 'invalid header name', bytes: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nbad header: y\r\n\r\n', status: 400, type: 'invalid_request_error' },
  {
    name: 'header overflow (431)',
    bytes: `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-padding: ${'a'.repeat(20_000)}\r\n\r\n`,
    status: 431,
    type: 'request_too_large',
  },
  { name: 'CONNECT', bytes: 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n', status: 400, type: 'invalid_request_error' },
];

describe("errors raised by Node's HTTP parser are Anthropic-shaped and close the connection", () => {
  const stack = stackForSuite();

  for (const c of CASES) {
    test(`${c.name}: ${c.status} ${c.type}, connection: close, nothing upstream, the next client is served`, async () => {
      const upstreamBefore = stack.mock.requests.length;
      assertAnthropicClose(await rawExchange(stack.gateway.url, c.bytes), c.status, c.type);
      assert.equal(stack.mock.requests.length, upstreamBefore, 'nothing reached upstream');
      assert.equal((await fetch(`${stack.gateway.url}/healthz`)).status, 200);
    });
  }

  test('a well-formed request on a fresh connection is still served after all of them', async () => {
    const answer = await stack.client().models.list();
    assert.ok(answer.data.length > 0);
  });
});
