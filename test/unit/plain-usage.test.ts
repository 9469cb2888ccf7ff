import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plainUsage } from '../../src/upstream/plain-usage.js';
import { UsageMeter } from '../../src/upstream/usage.js';
import { parsedUsageFacts as reference, type UsageFacts as Facts } from '../helpers/usage-reference.js';

/** `usage` values as upstreams write them: read in place. */
const PLAIN = [
  '{"input_tokens":228,"output_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"service_tier":"standard"}',
  '{}',
  '{ "input_tokens" : 1 ,\r\n\t"output_tokens": 999999999999999 }',
  '{"input_tokens":null,"output_tokens":"12","cache_read_input_tokens":true,"cache_creation_input_tokens":false,"server_tool_use":{"web_search_requests":0}}',
  // The last of duplicate keys wins, whatever the types.
  '{"input_tokens":1,"input_tokens":2,"output_tokens":3,"output_tokens":"x","cache_read_input_tokens":{"a":1}}',
  '{"input_tokens":0,"é漢":"ü"}',
];

/** Valid JSON outside the plain subset, and what is not JSON at all: JSON.parse decides. */
const ASIDE = [
  '{"input_tokens":1.5}',
  '{"input_tokens":1e3}',
  '{"input_tokens":-3}',
  '{"input_tokens":1234567890123456}',
  '{"input_tokens":[1]}',
  '{"in\\u0070ut_tokens":5}',
  '{"service_tier":"a\\"b"}',
  '{"a":{"b":{"c":1}}}',
  'null',
  '"usage"',
  // Not JSON: JSON.parse throws, and the answer has no usage, model or id (as before).
  '{"input_tokens":01}',
  '{"input_tokens":1,}',
  '{"input_tokens":1 "output_tokens":2}',
  '{"service_tier":standard}',
  '{"input_tokens":1',
  '{"a":"\u0001"}',
  '{"input_tokens":1}}',
];

function metered(text: string): Facts {
  const meter = new UsageMeter(false, true);
  meter.push(Buffer.from(text, 'utf8'));
  const hasUsage = meter.finish();
  return { model: meter.model, id: meter.id, hasUsage, usage: { ...meter.usage } };
}

describe("an answer's usage read in place", () => {
  test('upstream-shaped usage objects are read without JSON.parse, with the counts JSON.parse gives', () => {
    for (const usage of PLAIN) {
      const bytes = Buffer.from(usage, 'utf8');
      const counts = plainUsage(bytes, 0, bytes.length);
      assert.ok(counts !== undefined, usage);
      const parsed = JSON.parse(usage) as Record<string, unknown>;
      for (const key of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const) {
        const value = parsed[key];
        assert.equal(counts[key], value === undefined ? undefined : typeof value === 'number' ? value : null, `${key} of ${usage}`);
      }
    }
  });

  test('anything outside the plain subset steps aside (undefined) for JSON.parse', () => {
    for (const usage of ASIDE) {
      const bytes = Buffer.from(usage, 'utf8');
      assert.equal(plainUsage(bytes, 0, bytes.length), undefined, usage);
    }
  });

  test('the meter reads every answer around these as JSON.parse of the whole answer does (a malformed usage: nothing)', () => {
    for (const usage of [...PLAIN, ...ASIDE]) {
      const answer = `{"id":"msg_01","model":"claude-sonnet-5","content":[{"type":"text","text":"hi"}],"usage":${usage},"stop_reason":"end_turn"}`;
      assert.deepEqual(metered(answer), reference(answer), answer);
    }
  });
});
