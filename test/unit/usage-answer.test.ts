import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TopLevelObject } from '../../src/upstream/kinds/json-edit.js';
import { UsageMeter } from '../../src/upstream/usage.js';
import { parsedUsageFacts as reference, type UsageFacts as Facts } from '../helpers/usage-reference.js';

const USAGE = { input_tokens: 229, output_tokens: 16, cache_creation_input_tokens: 3, cache_read_input_tokens: 7, cache_creation: { ephemeral_5m_input_tokens: 0 }, service_tier: 'standard' };
const LONG = 'lorem ipsum dolor sit amet '.repeat(20);

/** Answers the scan must read exactly as JSON.parse reads them. */
const ANSWERS: string[] = [
  JSON.stringify({ id: 'msg_01', type: 'message', role: 'assistant', model: 'claude-sonnet-5', content: [{ type: 'text', text: LONG }], stop_reason: 'end_turn', stop_sequence: null, usage: USAGE }),
  // "usage" inside strings and nested objects is not the answer's usage.
  JSON.stringify({ id: 'msg_02', model: 'm', content: [{ type: 'text', text: 'say "usage":{"input_tokens":999} \\ done\\' }, { type: 'tool_use', input: { usage: { input_tokens: 5 }, list: [[{}], [], { a: [1, { b: '}]' }] }] } }], usage: USAGE }),
  // usage first; pretty-printed with every kind of whitespace.
  JSON.stringify({ usage: { input_tokens: 1, output_tokens: 2 }, model: 'claude-opus-5', id: 'msg_03', content: [] }, null, '\t').replace(/\n/g, '\r\n'),
  // Escapes of every kind, non-ASCII text, a \u0022 quote, a string ending in a backslash.
  JSON.stringify({ id: 'msg_\u00e9\u6f22', model: 'a"b\\c', content: [{ text: `\u2028\ud83d\ude00${LONG}\\` }], usage: { output_tokens: 4 } }).replace('a\\"b', 'a\\u0022b'),
  // Escaped quotes next to every structural byte, inside nested values and at the top level.
  JSON.stringify({ id: 'msg_06', content: [{ type: 'text', text: 'quote" } ] , { "' }], model: 'm"x', usage: { output_tokens: 9 } }),
  // The last of duplicate keys wins.
  '{"usage":{"input_tokens":1},"model":"first","usage":{"input_tokens":2},"model":"second"}',
  // Numbers and literals as values, an empty object, null usage, no usage.
  '{"x":-1.5e3,"y":true,"z":false,"w":null,"id":"msg_04","usage":null}',
  '{}',
  '{"id":"msg_05","model":"m","stop_sequence":null}',
  // Values of the wrong type.
  '{"id":7,"model":["m"],"usage":{"input_tokens":"12","output_tokens":-3}}',
  // A key with an escape (the member scan decodes it, as JSON.parse does).
  '{"us\\u0061ge":{"input_tokens":8},"model":"escaped-key"}',
  // An escaped key after a plain one of the same name wins (the walk without key strings hands such answers to the decoding scan).
  '{"id":"msg_plain","model":"m","\\u0069d":"msg_escaped","x\\n":1}',
  // What the scan hands to JSON.parse whole: a top-level array, invalid or truncated JSON.
  '[{"usage":{"input_tokens":1}}]',
  '{"usage":{"input_tokens":1},"content":"never ends',
  '{"usage":{"input_tokens":1}',
  'not json at all',
  '',
];

function metered(chunks: Buffer[]): Facts {
  const meter = new UsageMeter(false, true);
  for (const chunk of chunks) meter.push(chunk);
  const hasUsage = meter.finish();
  return { model: meter.model, id: meter.id, hasUsage, usage: { ...meter.usage } };
}

describe('reading a plain answer\'s id, model and usage', () => {
  test('gives what JSON.parse of the whole answer gives, whole or in chunks, at every memory alignment', () => {
    for (const text of ANSWERS) {
      const expected = reference(text);
      const bytes = Buffer.from(text, 'utf8');
      for (let shift = 0; shift < 4; shift++) {
        // The same bytes at another offset of a larger buffer (the scan reads words where aligned).
        const backing = Buffer.alloc(bytes.length + 8);
        bytes.copy(backing, shift);
        const view = backing.subarray(shift, shift + bytes.length);
        assert.deepEqual(metered([view]), expected, `${text.slice(0, 60)} (shift ${shift})`);
      }
      const cut = Math.floor(bytes.length / 3);
      assert.deepEqual(metered([bytes.subarray(0, cut), bytes.subarray(cut)]), expected, `${text.slice(0, 60)} (two chunks)`);
    }
  });

  test('the member scan itself reads every well-formed answer above (no fallback to parsing it whole)', () => {
    for (const text of ANSWERS.slice(0, ANSWERS.findIndex((t) => t.startsWith('[')))) {
      const answer = TopLevelObject.parse(Buffer.from(text, 'utf8'));
      assert.ok(answer !== undefined, text.slice(0, 60));
      const whole = JSON.parse(text) as Record<string, unknown>;
      const usage = answer.raw('usage');
      assert.deepEqual(usage === undefined ? undefined : JSON.parse(usage.toString('utf8')), whole.usage, `usage of ${text.slice(0, 60)}`);
      for (const key of ['id', 'model']) assert.equal(answer.string(key), typeof whole[key] === 'string' ? whole[key] : undefined, `${key} of ${text.slice(0, 60)}`);
    }
  });

  test('the member scan steps aside (undefined) for what is not one JSON object, so the whole text is parsed', () => {
    for (const text of ['[1]', '{"a":1', '{"a":"x', '{"a" 1}', '{"a":1 "b":2}', '{"a":1} x', 'nul', '']) {
      assert.equal(TopLevelObject.parse(Buffer.from(text)), undefined, text);
    }
  });
});
