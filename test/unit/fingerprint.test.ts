import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, fingerprint, type FingerprintInput } from '../../src/pipeline/fingerprint.js';

const base: FingerprintInput = {
  tenant: 'key:abc',
  method: 'POST',
  path: '/v1/messages',
  headers: { 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  json: { model: 'claude-sonnet-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
};

function key(overrides: Partial<FingerprintInput>): string {
  return fingerprint({ ...base, ...overrides });
}

describe('fingerprint', () => {
  test('key order in the body does not matter, at any depth', () => {
    const reordered = { messages: [{ content: 'hi', role: 'user' }], max_tokens: 10, model: 'claude-sonnet-5' };
    assert.equal(key({ json: reordered }), key({}));
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }), '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });

  test('per-attempt and per-connection headers never enter the key', () => {
    const noisy = {
      ...base.headers,
      'user-agent': 'Anthropic/JS 1.12.0',
      'x-stainless-retry-count': '2',
      'x-stainless-timeout': '600',
      traceparent: '00-abc-def-01',
      'accept-encoding': 'gzip',
      'x-request-id': 'r1',
      authorization: 'Bearer other',
    };
    assert.equal(key({ headers: noisy }), key({}));
  });

  test('beta order is irrelevant; a different beta set is a different key', () => {
    const ab = key({ headers: { ...base.headers, 'anthropic-beta': 'a-1,b-2' } });
    assert.equal(key({ headers: { ...base.headers, 'anthropic-beta': 'b-2, a-1' } }), ab);
    assert.notEqual(key({ headers: { ...base.headers, 'anthropic-beta': 'a-1' } }), ab);
    assert.notEqual(key({}), ab);
  });

  test('anything that changes the call changes the key (collision regressions)', () => {
    const keys = new Set([
      key({}),
      key({ tenant: 'key:def' }),
      key({ method: 'GET' }),
      key({ path: '/v1/messages/count_tokens' }),
      key({ path: '/v1/messages?beta=true' }),
      key({ headers: { 'anthropic-version': '2026-10-21' } }),
      key({ headers: { ...base.headers, 'anthropic-workspace-id': 'w1' } }),
      key({ json: { ...(base.json as object), max_tokens: 11 } }),
      key({ json: { ...(base.json as object), stream: true } }),
      key({ json: { ...(base.json as object), messages: [{ role: 'user', content: 'hi ' }] } }),
      key({ json: { ...(base.json as object), max_tokens: '10' } }),
      key({ json: [1, 2] }),
      key({ json: [2, 1] }),
      key({ json: undefined }),
      // Field boundaries cannot be shifted by crafted values.
      key({ tenant: 'a', method: 'bPOST' }),
      key({ tenant: 'ab', method: 'POST' }),
    ]);
    assert.equal(keys.size, 16);
  });
});
