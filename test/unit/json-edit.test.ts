import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TopLevelObject } from '../../src/upstream/kinds/json-edit.js';

/**
 * In-place edits must agree with JSON.parse on what the top-level members are (last duplicate
 * wins), and must leave every byte outside the edited members as it was.
 */

function parse(text: string): TopLevelObject {
  const object = TopLevelObject.parse(Buffer.from(text));
  assert.ok(object !== undefined, `should parse: ${text}`);
  return object;
}

function edit(text: string, changes: Parameters<TopLevelObject['edit']>[0]): string {
  return parse(text).edit(changes).toString('utf8');
}

/** What JSON.parse makes of an edit, computed on the parsed object: the semantic reference. */
function reference(text: string, changes: { remove?: string[]; set?: Record<string, string> }): Record<string, unknown> {
  const value = JSON.parse(text) as Record<string, unknown>;
  for (const key of changes.remove ?? []) Reflect.deleteProperty(value, key);
  for (const [key, raw] of Object.entries(changes.set ?? {})) value[key] = JSON.parse(raw) as unknown;
  return value;
}

const BODIES = [
  '{"model":"claude-sonnet-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}',
  ' \t\r\n{ "model" : "m" , "stream" : true } \n',
  '{"stream":false,"model":"a","model":"b"}',
  '{"messages":[{"model":"nested","content":"{\\"model\\":\\"x\\"}"}],"model":"top"}',
  '{"m\\u006fdel":"escaped-key","n":1.50e+3,"z":-0.0}',
  '{"text":"brackets } ] { [ and \\" quotes, commas,","model":"q\\"uote"}',
  '{}',
  '{ }',
  '{"a":{"b":[1,2,{"c":"}"}]},"model":"\\ud83d\\ude00 emoji"}',
  '{"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"","signature":"EqQBCkYIARgCIkD+/=="}]}]}',
];

const CHANGES: { remove?: string[]; set?: Record<string, string> }[] = [
  { remove: ['model'] },
  { remove: ['model', 'stream'] },
  { set: { anthropic_version: '"bedrock-2023-05-31"' } },
  { remove: ['model', 'stream'], set: { anthropic_version: '"bedrock-2023-05-31"', anthropic_beta: '["a","b"]' } },
  { set: { model: '"mapped-id"' } },
  { remove: ['absent'] },
  { remove: ['messages', 'model', 'stream', 'a', 'text', 'n', 'z', 'thinking'] },
];

describe('TopLevelObject reads', () => {
  test('string and bool agree with JSON.parse, last duplicate winning', () => {
    for (const text of BODIES) {
      const value = JSON.parse(text) as Record<string, unknown>;
      const object = parse(text);
      assert.equal(object.string('model'), typeof value.model === 'string' ? value.model : undefined, text);
      assert.equal(object.bool('stream'), typeof value.stream === 'boolean' ? value.stream : undefined, text);
    }
  });

  test('nested "model" keys and strings that look like keys are not top-level', () => {
    assert.equal(parse('{"messages":[{"model":"nested"}]}').string('model'), undefined);
    assert.equal(parse('{"x":"\\"model\\":\\"fake\\"","model":"real"}').string('model'), 'real');
    assert.equal(parse('{"model":1}').string('model'), undefined);
  });

  test('anything but one well-formed object is refused', () => {
    for (const text of ['', '[]', '"s"', '{"a":1', '{"a" 1}', '{"a":1,}', '{"a":1} x', '{"a":"unterminated}', '{a:1}', '{"a":[1,2}']) {
      assert.equal(TopLevelObject.parse(Buffer.from(text)), undefined, text);
    }
  });
});

describe('TopLevelObject edits', () => {
  test('every edit parses to what editing the parsed object gives', () => {
    for (const text of BODIES) {
      for (const changes of CHANGES) {
        const out = edit(text, changes);
        assert.deepEqual(JSON.parse(out), reference(text, changes), `${text} with ${JSON.stringify(changes)} gave ${out}`);
      }
    }
  });

  test('bytes outside the edited members are kept exactly (number spelling, escapes, order, signatures)', () => {
    const text = '{"model":"m","n":1.50e+3,"s":"\\u00e9\\/","thinking":{"signature":"EqQB+/=="},"stream":true,"last":[ 1 , 2 ]}';
    assert.equal(edit(text, { remove: ['model', 'stream'] }), '{"n":1.50e+3,"s":"\\u00e9\\/","thinking":{"signature":"EqQB+/=="},"last":[ 1 , 2 ]}');
    assert.equal(edit(text, { set: { anthropic_version: '"v"' }, remove: ['model'] }), '{"anthropic_version":"v","n":1.50e+3,"s":"\\u00e9\\/","thinking":{"signature":"EqQB+/=="},"stream":true,"last":[ 1 , 2 ]}');
    assert.equal(edit(text, { set: { model: '"x"' } }), text.replace('"model":"m"', '"model":"x"'));
  });

  test('duplicates: all are removed; a set replaces the last and drops the earlier ones', () => {
    assert.equal(edit('{"model":"a","x":1,"model":"b"}', { remove: ['model'] }), '{"x":1}');
    assert.equal(edit('{"model":"a","x":1,"model":"b"}', { set: { model: '"c"' } }), '{"x":1,"model":"c"}');
  });

  test('whitespace and edges: first, last, only member, empty object', () => {
    assert.equal(edit('{ "model" : "m" }', { remove: ['model'] }), '{ }');
    assert.equal(edit('{}', { set: { a: '1' } }), '{"a":1}');
    assert.equal(edit('{"a":1,"model":"m"}', { remove: ['model'] }), '{"a":1}');
    assert.equal(edit('{"model":"m","a":1}', { remove: ['model'] }), '{"a":1}');
    assert.equal(edit('{"model":"m","a":1}', { remove: ['model'], set: { v: '"x"' } }), '{"v":"x","a":1}');
  });

  test('fuzz: random objects, random edits, checked against JSON.parse', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const keys = ['model', 'stream', 'a', 'm\\u006fdel', 'x'];
    const values = ['"s"', '"mo\\"del"', '1', '-2.5E-3', 'true', 'false', 'null', '{"model":"n"}', '[1,{"a":"]"}]', '""', '"\\\\"'];
    const ws = ['', ' ', '\n', '\t '];
    for (let run = 0; run < 500; run++) {
      const n = rand(6);
      const members: string[] = [];
      for (let i = 0; i < n; i++) members.push(`${ws[rand(4)] ?? ''}"${keys[rand(keys.length)] ?? 'a'}"${ws[rand(4)] ?? ''}:${ws[rand(4)] ?? ''}${values[rand(values.length)] ?? '1'}${ws[rand(4)] ?? ''}`);
      const text = `${ws[rand(4)] ?? ''}{${members.join(',')}}${ws[rand(4)] ?? ''}`;
      const value = JSON.parse(text) as Record<string, unknown>;
      const object = parse(text);
      assert.equal(object.string('model'), typeof value.model === 'string' ? value.model : undefined, text);
      const changes = CHANGES[rand(CHANGES.length)] ?? {};
      assert.deepEqual(JSON.parse(object.edit(changes).toString('utf8')), reference(text, changes), `${text} ${JSON.stringify(changes)}`);
    }
  });
});
