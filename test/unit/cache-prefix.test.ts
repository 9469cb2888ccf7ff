import { describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { JsonScanner } from '../../src/core/json-scan.js';
import { readBody } from '../../src/http/body.js';
import { affinityKey } from '../../src/pipeline/affinity/cache-affinity.js';

/**
 * The cached head's identity (cache-affinity routing) is taken by the body's one validating scan:
 * the bytes of the top-level `tools` and `system` values go into a SHA-256 as they pass, whatever
 * the chunking; nothing is parsed (JSON.parse is never called) and no value is built.
 */

const TOOLS = '[{"name":"read","description":"Reads a file","input_schema":{"type":"object"}},{"name":"edit","description":"Edits","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}]';
const SYSTEM = '[{"type":"text","text":"You are Claude Code. cwd: /work/project-7","cache_control":{"type":"ephemeral"}}]';

function body(messages: string, system = SYSTEM, tools = TOOLS, order: 'api' | 'messages-first' = 'messages-first'): string {
  const msgs = `"messages":${messages}`;
  const head = `"tools":${tools},"system":${system}`;
  return order === 'api' ? `{"model":"claude-sonnet-5",${head},${msgs},"max_tokens":64}` : `{"model":"claude-sonnet-5",${msgs},${head},"max_tokens":64,"stream":true}`;
}

function scan(text: string, chunkBytes?: number): ReturnType<JsonScanner['end']> {
  const s = new JsonScanner(1000, true);
  const bytes = Buffer.from(text);
  if (chunkBytes === undefined) s.push(bytes);
  else for (let i = 0; i < bytes.length; i += chunkBytes) s.push(bytes.subarray(i, i + chunkBytes));
  return s.end();
}

function expected(tools: string, system: string): string {
  return createHash('sha256').update(`\0tools\0${tools}`).update(`\0system\0${system}`).digest('base64url');
}

const TURN_ONE = '[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]';
const TURN_TWO = '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":[{"type":"text","text":"more","cache_control":{"type":"ephemeral"}}]}]';

describe('the cached head identity (json-scan tap)', () => {
  test('is the digest of the tools and system values, the same for every turn of a session and every chunking', () => {
    const want = expected(TOOLS, SYSTEM);
    const one = scan(body(TURN_ONE));
    assert.ok(one.ok && one.cachePrefix !== undefined);
    assert.equal(one.cachePrefix.digest, want);
    assert.equal(one.cachePrefix.ttl1h, false);
    for (const chunkBytes of [1, 7, 64, 1000]) {
      const two = scan(body(TURN_TWO), chunkBytes);
      assert.ok(two.ok);
      assert.equal(two.cachePrefix?.digest, want, `chunks of ${chunkBytes} bytes, the next turn`);
    }
    const apiOrder = scan(body(TURN_ONE, SYSTEM, TOOLS, 'api'), 13);
    assert.equal(apiOrder.ok && apiOrder.cachePrefix?.digest, want, 'key order of the body does not matter');
  });

  test('differs with the system prompt (another project) and is absent without a breakpoint in tools or system', () => {
    const other = scan(body(TURN_ONE, SYSTEM.replace('project-7', 'project-8')));
    assert.ok(other.ok);
    assert.notEqual(other.cachePrefix?.digest, expected(TOOLS, SYSTEM));
    const unmarked = scan(body(TURN_ONE, '"plain system"', '[{"name":"read","input_schema":{}}]'));
    assert.ok(unmarked.ok);
    assert.equal(unmarked.cachePrefix, undefined, 'a breakpoint in messages only: no head identity');
    const none = scan('{"model":"m","messages":[]}');
    assert.ok(none.ok);
    assert.equal(none.cachePrefix, undefined);
    const noTap = new JsonScanner(1000);
    noTap.push(Buffer.from(body(TURN_ONE)));
    const plain = noTap.end();
    assert.ok(plain.ok);
    assert.equal(plain.cachePrefix, undefined, 'off unless asked for');
  });

  test('a "ttl": "1h" breakpoint in the head asks for the hour', () => {
    const system = '[{"type":"text","text":"sys","cache_control":{"type":"ephemeral","ttl":"1h"}}]';
    const got = scan(body(TURN_ONE, system), 5);
    assert.ok(got.ok);
    assert.equal(got.cachePrefix?.ttl1h, true);
    assert.equal(affinityKey('t:tenant', 'claude-sonnet-5', got.cachePrefix)?.ttlMs, 3_600_000);
    const fiveMinutes = scan(body(TURN_ONE));
    assert.ok(fiveMinutes.ok);
    assert.equal(affinityKey('t:tenant', 'claude-sonnet-5', fiveMinutes.cachePrefix)?.ttlMs, 300_000);
  });

  test('the tap changes no verdict of the scan', () => {
    for (const text of [body(TURN_ONE), '{"tools":[1,2,{"cache_control":5}],"system":"x"}', '{"tools":', '{"system":"a" "b"}', '{"tools":[}', '{"system":12,"tools":true}']) {
      const plain = new JsonScanner(1000);
      plain.push(Buffer.from(text));
      const want = plain.end();
      for (const chunkBytes of [1, 3, 1000]) {
        const got = scan(text, chunkBytes);
        assert.equal(got.ok, want.ok, text);
        if (got.ok && want.ok) assert.equal(got.model, want.model);
      }
    }
  });

  test('identity keys are per tenant and model', () => {
    const prefix = { digest: expected(TOOLS, SYSTEM), ttl1h: false };
    const a = affinityKey('t:a', 'claude-sonnet-5', prefix)?.key;
    assert.ok(a !== undefined);
    assert.notEqual(affinityKey('t:b', 'claude-sonnet-5', prefix)?.key, a);
    assert.notEqual(affinityKey('t:a', 'claude-opus-5', prefix)?.key, a);
    assert.equal(affinityKey(undefined, 'claude-sonnet-5', prefix), undefined, 'no tenant, no identity');
  });

  test('http/body.ts takes it in the same pass that reads the body: no JSON.parse, no second pass', async () => {
    const text = body(TURN_TWO);
    const bytes = Buffer.from(text);
    const req = Readable.from(Array.from({ length: Math.ceil(bytes.length / 9) }, (_, i) => bytes.subarray(i * 9, i * 9 + 9)), { objectMode: false }) as unknown as IncomingMessage;
    Object.assign(req, { headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) } });
    const parse = mock.method(JSON, 'parse');
    try {
      const read = await readBody(req, 1024 * 1024, undefined, true);
      assert.equal(parse.mock.callCount(), 0, 'nothing parsed');
      assert.equal(read.model, 'claude-sonnet-5');
      assert.equal(read.cachePrefix?.digest, expected(TOOLS, SYSTEM));
      assert.ok(read.bytes.equals(bytes));
    } finally {
      parse.mock.restore();
    }
  });
});
