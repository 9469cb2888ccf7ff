import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../helpers/stack.js';
import { rawExchange, rawRequest } from '../helpers/raw-http.js';

/**
 * Only upstream failures count against a breaker. A client sending a thousand requests the gateway
 * refuses itself (bad targets, bad JSON, oversized bodies) must not open the breaker of the model
 * they name for everybody else.
 */
describe('breakers no client can poison', () => {
  test('a thousand malformed requests naming a model leave its breaker closed; another tenant is served', async () => {
    const stack = await startStack({ env: { BREAKER_VOLUME_THRESHOLD: '3', BREAKER_ERROR_THRESHOLD: '1', MAX_BODY_BYTES: '4096' } });
    try {
      const body = JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'poison' }] });
      const json = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-attacker-000000000000' };
      const malformed = [
        rawRequest('POST', '*', json, body),
        rawRequest('POST', 'http://other.example/v1/messages', json, body),
        rawRequest('POST', '/v1/%2e%2e/%2e%2e/v1/messages', json, body),
        rawRequest('POST', '/v1/messages', json, body.slice(0, -3)),
        rawRequest('POST', '/v1/messages', json, body.replace('poison', 'x'.repeat(8_000))),
      ];
      const statuses = new Map<number, number>();
      for (let i = 0; i < 1_000; i++) {
        const answer = await rawExchange(stack.gateway.url, malformed[i % malformed.length] as string);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(answer.status === 400 || answer.status === 413, `refused at the edge, got ${answer.status}`);
      }
      assert.equal(stack.mock.stats().requests, 0, 'none reached upstream');
      const metrics = await (await fetch(`${stack.gateway.url}/metrics`)).text();
      assert.doesNotMatch(metrics, /circuit_breaker_state\{[^}]*\} [12]/, 'no breaker is open or half-open');
      const served = await stack.client({ apiKey: 'sk-ant-other-tenant-1111111111' }).messages.create({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(served.type, 'message');
    } finally {
      await stack.close();
    }
  });
});
