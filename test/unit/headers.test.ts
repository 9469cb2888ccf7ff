import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerHead, forwardRequestHeaders, forwardResponseHeaders, lowerCaseName } from '../../src/upstream/headers.js';
import { parseHeaders } from '../../src/upstream/undici-parts.js';
import { answerPairsOf } from '../../src/upstream/header-list.js';

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

  test('lowerCaseName lower-cases as toLowerCase does (a name with nothing to change is returned as it is)', () => {
    for (const name of ['content-type', 'Content-Type', 'X-API-KEY', 'anthropic-beta', 'x-\u00c4b', 'a', '', 'Z', '@[`{']) {
      assert.equal(lowerCaseName(name), name.toLowerCase(), name);
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
    const out = Object.fromEntries(answerPairsOf(forwardResponseHeaders(upstream, false)));
    assert.deepEqual(Object.keys(out).sort(), ['anthropic-ratelimit-requests-remaining', 'content-encoding', 'content-length', 'content-type', 'request-id', 'retry-after', 'set-cookie']);
    assert.deepEqual(out['set-cookie'], ['a=1', 'b=2']);
  });

  test('a changed body drops the framing headers that described the old bytes', () => {
    const out = Object.fromEntries(answerPairsOf(forwardResponseHeaders(upstream, true)));
    assert.equal(out['content-length'], undefined);
    assert.equal(out['content-encoding'], undefined);
    assert.equal(out['request-id'], 'req_1');
  });

  test('an upstream cannot speak in the gateway\'s namespace: its x-gateway-* headers are dropped (the gateway appends its own)', () => {
    const out = Object.fromEntries(answerPairsOf(forwardResponseHeaders({ 'x-gateway-coalesce-role': 'follower', 'x-gateway-upstream': 'evil', 'request-id': 'req_2', 'x-gatewayish': 'kept' }, false)));
    assert.deepEqual(out, { 'request-id': 'req_2', 'x-gatewayish': 'kept' });
  });
});

describe('an answer head read from undici\'s raw list (no headers object)', () => {
  /** As undici's HTTP/1.1 parser hands them to a handler: Buffers, names in the upstream's case. */
  const raw = (flat: string[]): Buffer[] => flat.map((item) => Buffer.from(item, 'latin1'));
  const lists: Record<string, string[]> = {
    'a usual answer': ['Content-Type', 'text/event-stream; charset=utf-8', 'Transfer-Encoding', 'chunked', 'request-id', 'req_1', 'anthropic-ratelimit-requests-remaining', '99', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5'],
    'repeats, connection-listed and gateway-namespaced headers': [
      'Set-Cookie', 'a=1', 'content-length', '120', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'gone', 'set-cookie', 'b=2',
      'Content-Encoding', 'gzip', 'x-gateway-upstream', 'evil', 'X-Custom', 'caf\u00e9', 'SET-COOKIE', 'c=3', 'connection', 'x-other', 'x-other', 'gone too', 'Retry-After', '3',
    ],
    'no headers': [],
    // More headers than the pairs are scanned for (LINEAR_PAIRS): repeats are found through a Map.
    'a long head with repeats': [
      ...Array.from({ length: 40 }, (_, i) => [`X-H-${i}`, `v${i}`]).flat(),
      'Set-Cookie', 'a=1', 'x-h-3', 'again', 'set-cookie', 'b=2', 'Connection', 'x-h-7', 'X-H-3', 'third',
    ],
  };

  for (const [name, flat] of Object.entries(lists)) {
    test(`${name}: the same forwarded pairs as undici's headers object through forwardResponseHeaders, with and without the framing`, () => {
      const object = parseHeaders(raw(flat));
      const head = new AnswerHead(200, raw(flat));
      assert.deepEqual(head.forwarded, forwardResponseHeaders(object, false));
      assert.deepEqual(head.headers, object);
      head.dropBodyFraming();
      assert.deepEqual(head.forwarded, forwardResponseHeaders(object, true));
    });
  }

  test('answer after answer, every value is the one sent (a value remembered per name is reused only for the same bytes)', () => {
    const values = ['99', '98', '98', '', '9', '99 ', ' 99', 'caf\u00e9', 'cafe', 'x'.repeat(200), 'x'.repeat(200), 'x'.repeat(199) + 'y', '99'];
    for (const value of values) {
      const flat = ['Content-Type', 'application/json', 'anthropic-ratelimit-requests-remaining', value, 'X-Same', value];
      const head = new AnswerHead(200, raw(flat));
      assert.deepEqual(head.forwarded, forwardResponseHeaders(parseHeaders(raw(flat)), false), JSON.stringify(value));
    }
  });

  test('the values the gateway reads are the first ones, as headerValue reads them from the object', () => {
    const head = new AnswerHead(200, raw(lists['repeats, connection-listed and gateway-namespaced headers'] as string[]));
    assert.equal(head.contentEncoding, 'gzip');
    assert.equal(head.hasContentLength, true);
    assert.equal(head.contentType, undefined);
    assert.equal(head.requestId, undefined);
    const usual = new AnswerHead(200, raw(lists['a usual answer'] as string[]));
    assert.equal(usual.contentType, 'text/event-stream; charset=utf-8');
    assert.equal(usual.transferEncoding, 'chunked');
    assert.equal(usual.requestId, 'req_1');
    assert.equal(usual.hasContentLength, false);
  });
});
