import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardRequestHeaders, forwardResponseHeaders } from '../../src/upstream/headers.js';

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('request header hygiene', () => {
  const raw = [
    'Host', 'gateway:8080',
    'Authorization', 'Bearer sk-ant-client',
    'anthropic-version', '2026-10-21',
    'anthropic-beta', 'a-2025-01-01,b-2025-02-02',
    'Connection', 'keep-alive, X-Drop-Me',
    'X-Drop-Me', 'secret-hop',
    'Keep-Alive', 'timeout=5',
    'Transfer-Encoding', 'chunked',
    'TE', 'trailers',
    'Upgrade', 'h2c',
    'Proxy-Authorization', 'Basic abc',
    'Content-Length', '42',
    'Accept-Encoding', 'gzip, br',
    'x-gateway-mode', 'batch',
    'X-Gateway-Coalesce', 'off',
    'x-stainless-retry-count', '0',
    'x-custom', 'one',
    'x-custom', 'two',
  ];

  test('end-to-end headers pass unchanged, duplicates and order kept', () => {
    const out = pairs(forwardRequestHeaders(raw));
    assert.deepEqual(out, [
      ['authorization', 'Bearer sk-ant-client'],
      ['anthropic-version', '2026-10-21'],
      ['anthropic-beta', 'a-2025-01-01,b-2025-02-02'],
      ['x-stainless-retry-count', '0'],
      ['x-custom', 'one'],
      ['x-custom', 'two'],
      ['accept-encoding', 'identity'],
    ]);
  });

  test('hop-by-hop, connection-listed, framing and x-gateway-* headers are never forwarded', () => {
    const names = pairs(forwardRequestHeaders(raw)).map(([n]) => n);
    for (const dropped of ['host', 'connection', 'x-drop-me', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'content-length', 'x-gateway-mode', 'x-gateway-coalesce']) {
      assert.ok(!names.includes(dropped), `${dropped} must not be forwarded`);
    }
  });

  test('in injection mode every client credential is removed (the upstream adapter adds the gateway-held one)', () => {
    const out = pairs(forwardRequestHeaders(['x-api-key', 'client-key', 'authorization', 'Bearer client', 'anthropic-version', 'v'], { dropCredentials: true }));
    assert.deepEqual(out, [
      ['anthropic-version', 'v'],
      ['accept-encoding', 'identity'],
    ]);
  });
});

describe('response header hygiene', () => {
  const upstream = {
    'content-type': 'application/json',
    'content-length': '120',
    'content-encoding': 'gzip',
    'request-id': 'req_1',
    'anthropic-ratelimit-requests-remaining': '99',
    'retry-after': '3',
    connection: 'keep-alive, x-hop',
    'x-hop': 'gone',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'set-cookie': ['a=1', 'b=2'],
  };

  test('end-to-end headers pass; hop-by-hop and connection-listed ones do not', () => {
    const out = Object.fromEntries(forwardResponseHeaders(upstream, false));
    assert.deepEqual(Object.keys(out).sort(), ['anthropic-ratelimit-requests-remaining', 'content-encoding', 'content-length', 'content-type', 'request-id', 'retry-after', 'set-cookie']);
    assert.deepEqual(out['set-cookie'], ['a=1', 'b=2']);
  });

  test('a changed body drops the framing headers that described the old bytes', () => {
    const out = Object.fromEntries(forwardResponseHeaders(upstream, true));
    assert.equal(out['content-length'], undefined);
    assert.equal(out['content-encoding'], undefined);
    assert.equal(out['request-id'], 'req_1');
  });

  test('an upstream cannot speak in the gateway\'s namespace: its x-gateway-* headers are dropped (the gateway appends its own)', () => {
    const out = Object.fromEntries(forwardResponseHeaders({ 'x-gateway-coalesce-role': 'follower', 'x-gateway-upstream': 'evil', 'request-id': 'req_2', 'x-gatewayish': 'kept' }, false));
    assert.deepEqual(out, { 'request-id': 'req_2', 'x-gatewayish': 'kept' });
  });
});
