import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, startFingerprint, type FingerprintFields } from '../../src/pipeline/fingerprint.js';

const BODY = '{"model":"claude-sonnet-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}';

const base: FingerprintFields & { body: string } = {
  tenant: 'key:abc',
  method: 'POST',
  path: '/v1/messages',
  headers: { 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  body: BODY,
};

function key(overrides: Partial<FingerprintFields & { body: string }>): string {
  const { body, ...fields } = { ...base, ...overrides };
  return fingerprint(fields, body);
}

describe('fingerprint', () => {
  test('identical means byte-identical: key order and number spelling make a different key', () => {
    assert.equal(key({ body: BODY }), key({}));
    const reordered = '{"messages":[{"role":"user","content":"hi"}],"max_tokens":10,"model":"claude-sonnet-5"}';
    assert.notEqual(key({ body: reordered }), key({}));
    assert.notEqual(key({ body: BODY.replace('10', '10.0') }), key({}));
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
      key({ body: BODY.replace('10', '11') }),
      key({ body: BODY.replace('}]}', '}],"stream":true}') }),
      key({ body: BODY.replace('"hi"', '"hi "') }),
      key({ body: BODY.replace('10', '"10"') }),
      key({ body: '[1,2]' }),
      key({ body: '[2,1]' }),
      key({ body: '' }),
      // Field boundaries cannot be shifted by crafted values.
      key({ tenant: 'a', method: 'bPOST' }),
      key({ tenant: 'ab', method: 'POST' }),
    ]);
    assert.equal(keys.size, 16);
  });

  test('the body is hashed as it arrives: how it was cut into chunks never changes the key', () => {
    const { body: _body, ...fields } = base;
    const bytes = Buffer.from(BODY);
    for (const cut of [1, 7, 40, bytes.length - 1]) {
      const hash = startFingerprint(fields);
      for (let i = 0; i < bytes.length; i += cut) hash.update(bytes.subarray(i, i + cut));
      assert.equal(hash.key(), key({}), `chunks of ${cut} bytes`);
    }
  });

  test('with the raw header list, the anthropic-* names found in it give the key the headers object gives (any case, repeats, betas in any order)', () => {
    const { body: _body, ...fields } = base;
    const cases: [string[], Record<string, string>][] = [
      [['Host', 'h', 'Anthropic-Version', '2023-06-01', 'content-type', 'application/json'], { host: 'h', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' }],
      [
        ['anthropic-beta', 'b-2', 'ANTHROPIC-BETA', 'a-1', 'anthropic-version', 'v', 'Accept', '*/*', 'anthropic-', 'empty-suffix', 'x-anthropic-nope', '1'],
        { 'anthropic-beta': 'b-2, a-1', 'anthropic-version': 'v', accept: '*/*', 'anthropic-': 'empty-suffix', 'x-anthropic-nope': '1' },
      ],
      [['content-type', 'application/json', 'authorization', 'Bearer x'], { 'content-type': 'application/json', authorization: 'Bearer x' }],
    ];
    for (const [rawHeaders, headers] of cases) {
      const expected = fingerprint({ ...fields, headers }, BODY);
      const hash = startFingerprint({ ...fields, headers, rawHeaders });
      hash.update(Buffer.from(BODY));
      assert.equal(hash.key(), expected, rawHeaders.join(' '));
    }
  });
  test("a tenant's remembered prefix serves only a request with the same method, path and anthropic-* pairs as sent: each key is the one computed afresh", () => {
    // One tenant, requests that differ from the one before in one thing each (and back again): the
    // remembered prefix must never stand in for a different one.
    // Three alike in a row: each one after the first hashes on from its own copy of the remembered hash.
    const requests: { method: string; path: string; raw: string[] }[] = [
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-02'] },
      { method: 'POST', path: '/v1/messages?beta=true', raw: ['anthropic-version', '2023-06-02'] },
      { method: 'PUT', path: '/v1/messages?beta=true', raw: ['anthropic-version', '2023-06-02'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01', 'anthropic-beta', 'a-1'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-beta', 'a-1', 'anthropic-version', '2023-06-01'] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01'] },
      { method: 'POST', path: '/v1/messages', raw: ['Anthropic-Version', '2023-06-01', 'anthropic-beta', 'b-2', 'anthropic-beta', 'a-1'] },
      { method: 'POST', path: '/v1/messages', raw: ['Anthropic-Version', '2023-06-01', 'anthropic-beta', 'b-2', 'anthropic-beta', 'a-1'] },
      { method: 'POST', path: '/v1/messages', raw: [] },
      { method: 'POST', path: '/v1/messages', raw: ['anthropic-version', '2023-06-01'] },
    ];
    const seen = new Set<string>();
    for (const { method, path, raw } of requests) {
      const headers: Record<string, string> = {};
      for (let i = 0; i < raw.length; i += 2) {
        const name = (raw[i] as string).toLowerCase();
        headers[name] = headers[name] === undefined ? (raw[i + 1] as string) : `${headers[name]}, ${raw[i + 1] as string}`;
      }
      const fields = { tenant: 'memo-tenant', method, path, headers };
      const hash = startFingerprint({ ...fields, rawHeaders: raw });
      hash.update(Buffer.from(BODY));
      const got = hash.key();
      assert.equal(got, fingerprint(fields, BODY), `${method} ${path} ${raw.join(' ')}`);
      seen.add(got);
    }
    assert.equal(seen.size, 7, 'seven different requests among them');
  });
});
