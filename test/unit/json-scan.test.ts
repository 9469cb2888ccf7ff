import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plainRunEnd, JsonScanner } from '../../src/core/json-scan.js';

/**
 * The scanner must agree with JSON.parse on what is valid JSON (a valid request must never be
 * refused) and on the top-level `model`, however the bytes are split into chunks.
 */

function scan(chunks: Buffer[], depth = 1000): ReturnType<JsonScanner['end']> {
  const s = new JsonScanner(depth);
  for (const c of chunks) s.push(c);
  return s.end();
}

function reference(text: string): { ok: boolean; model: string | undefined } {
  try {
    const v = JSON.parse(text) as unknown;
    const model = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as { model?: unknown }).model : undefined;
    return { ok: true, model: typeof model === 'string' ? model : undefined };
  } catch {
    return { ok: false, model: undefined };
  }
}

function agree(text: string): void {
  const bytes = Buffer.from(text);
  const want = reference(text);
  const splits: Buffer[][] = [[bytes], Array.from(bytes, (b) => Buffer.from([b]))];
  for (let at = 1; at < bytes.length; at++) splits.push([bytes.subarray(0, at), bytes.subarray(at)]);
  for (const chunks of splits) {
    const got = scan(chunks);
    assert.equal(got.ok, want.ok, `${JSON.stringify(text)} split ${chunks.map((c) => c.length).join('+')}: ${got.ok ? 'accepted' : got.problem}`);
    if (got.ok) assert.equal(got.model, want.model, JSON.stringify(text));
  }
}

const VALID = [
  '{"model":"claude-sonnet-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}',
  ' \t\r\n{ "model" : "m" } \n',
  '{"model":"a","model":"b"}',
  '{"model":"a","model":5}',
  '{"mod\\u0065l":"esc\\"aped\\\\ \\/ \\b\\f\\n\\r\\t \\u00e9"}',
  '{"x":{"model":"nested"},"y":[{"model":"deeper"}]}',
  '{"model":{"id":"x"}}',
  '["model","x"]',
  '{}',
  '[]',
  '[[],{},[{}]]',
  '0',
  '-0.5e+10',
  '1E-2',
  '123',
  'true',
  'false',
  'null',
  '"just a string"',
  '{"n":[0,-1,1.5,2e3,-0.0e-0,1e400,9007199254740993],"t":true,"f":false,"z":null}',
  '{"unicode":"日本語 ✓ 😀","model":"ü"}',
  '{"model":""}',
];

const INVALID = [
  '',
  ' ',
  '{',
  '}',
  '{"model":"x"',
  '{"model" "x"}',
  '{"model":"x",}',
  '[1,]',
  '[,1]',
  '{model:"x"}',
  "{'model':'x'}",
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":-}',
  '{"a":1e}',
  '{"a":1e+}',
  '{"a":+1}',
  '{"a":tru}',
  '{"a":truex}',
  '{"a":nul}',
  '{"a":"\\x"}',
  '{"a":"\\u12"}',
  '{"a":"\\u12G4"}',
  '{"a":"line\nbreak"}',
  '{"a":"tab\there"}',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '[1 2]',
  '{"a" : 1 : 2}',
  '"unterminated',
  '\ufeff{}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '[1]]',
  '{"a":[}',
];

describe('JsonScanner', () => {
  test('accepts what JSON.parse accepts and finds the same top-level model, at every split', () => {
    for (const text of VALID) agree(text);
  });

  test('refuses what JSON.parse refuses, at every split', () => {
    for (const text of INVALID) agree(text);
  });

  test('random documents and random corruptions of them agree with JSON.parse', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const value = (depth: number): unknown => {
      switch (rand(depth > 3 ? 4 : 6)) {
        case 0:
          return rand(2) === 0 ? rand(1000) - 500 : (rand(100000) - 50000) / 7;
        case 1:
          return ['', 'a', 'model', 'é"\\\n', '\u0001', 'claude-sonnet-5'][rand(6)];
        case 2:
          return [true, false, null][rand(3)];
        case 3:
          return rand(2) === 0 ? 'x'.repeat(rand(40)) : -0;
        case 4:
          return Array.from({ length: rand(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: rand(4) }, (_, i) => [rand(3) === 0 ? 'model' : `k${i}`, value(depth + 1)]));
      }
    };
    const alphabet = '{}[]:,"\\ 0-.eE+tfnu1a\n';
    for (let n = 0; n < 400; n++) {
      const text = JSON.stringify({ model: value(1), other: value(1) }, null, rand(2) === 0 ? 0 : 1);
      agree(text);
      const at = rand(text.length);
      agree(text.slice(0, at) + (alphabet[rand(alphabet.length)] as string) + text.slice(at + rand(2)));
    }
  });

  test('nesting past the limit is refused; at the limit it is accepted', () => {
    const nested = (d: number): Buffer => Buffer.from('['.repeat(d) + ']'.repeat(d));
    assert.equal(scan([nested(10)], 10).ok, true);
    const deep = scan([nested(11)], 10);
    assert.ok(!deep.ok);
    assert.match(deep.problem, /nesting deeper than 10 levels/);
    assert.equal(scan([nested(1_000_000)]).ok, false);
    assert.equal(scan([nested(1000)]).ok, true);
    assert.equal(scan([nested(1001)]).ok, false);
  });

  test('containers opened before the depth stack grows are still closed by their own kind', () => {
    // Alternating objects and arrays 200 deep: the stack grows several times on the way in, and
    // each closer is checked against the kind recorded before the growth.
    const open = (d: number): string => Array.from({ length: d }, (_, i) => (i % 2 === 0 ? '{"k":' : '[')).join('');
    const close = (d: number): string => Array.from({ length: d }, (_, i) => ((d - 1 - i) % 2 === 0 ? '}' : ']')).join('');
    assert.equal(scan([Buffer.from(open(200) + '1' + close(200))]).ok, true);
    // The outermost closer swapped for the other kind: refused.
    const wrong = open(200) + '1' + close(199) + ']';
    assert.equal(scan([Buffer.from(wrong)]).ok, false);
  });

  test('an over-long model value is not truncated into a plausible id', () => {
    const got = scan([Buffer.from(`{"model":"${'m'.repeat(5000)}"}`)]);
    assert.ok(got.ok);
    assert.notEqual(got.model?.slice(0, 10), 'mmmmmmmmmm');
  });
});

describe('plainRunEnd (the string fast path, a word at a time)', () => {
  const byteLoop = (chunk: Uint8Array, from: number, end: number): number => {
    for (let j = from; j < end; j++) {
      const d = chunk[j] as number;
      if (d === 0x22 || d === 0x5c || d < 0x20) return j;
    }
    return end;
  };

  test('finds the same byte as a byte loop: every stop byte, at every offset and alignment, over every byte value around it', () => {
    // Deterministic pseudo-random input (no flaky seeds): a linear congruential generator.
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const backing = Buffer.alloc(600);
    for (let round = 0; round < 3000; round++) {
      // Plain bytes of every value that does not stop a run (0x20-0xff but " and \), one stop byte somewhere or none.
      for (let k = 0; k < backing.length; k++) {
        let b = 0x20 + Math.floor(random() * 0xe0);
        if (b === 0x22 || b === 0x5c) b = 0x61;
        backing[k] = b;
      }
      const stops = [0x22, 0x5c, 0x00, 0x0a, 0x1f, 0x01];
      if (random() < 0.9) backing[Math.floor(random() * backing.length)] = stops[Math.floor(random() * stops.length)] as number;
      const start = Math.floor(random() * 8); // the chunk's own offset in its memory: every alignment
      const chunk = backing.subarray(start, start + 500 + Math.floor(random() * 90));
      const from = Math.floor(random() * 64);
      const end = chunk.length - Math.floor(random() * 16);
      assert.equal(plainRunEnd(chunk, from, end), byteLoop(chunk, from, end), `round ${round}`);
    }
  });

  test('the same answer whichever memory was scanned before: other memory, memory over 1 MiB, memory resized since', () => {
    const plainWithStopAt = (memory: Buffer, at: number): Buffer => {
      memory.fill(0x61);
      memory[at] = 0x22;
      return memory;
    };
    const small = plainWithStopAt(Buffer.alloc(256), 200);
    const large = plainWithStopAt(Buffer.alloc((1 << 20) + 64), (1 << 20) + 40);
    for (let round = 0; round < 3; round++) {
      assert.equal(plainRunEnd(small, 0, small.length), 200);
      assert.equal(plainRunEnd(large, 0, large.length), (1 << 20) + 40);
    }
    // A resizable ArrayBuffer that grows after it was scanned: the stop byte lies past its old end.
    const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const memory = new Resizable(64, { maxByteLength: 1024 });
    const before = Buffer.from(memory);
    before.fill(0x61);
    assert.equal(plainRunEnd(before, 0, before.length), 64);
    memory.resize(1024);
    const after = Buffer.from(memory);
    after.fill(0x61);
    after[900] = 0x5c;
    assert.equal(plainRunEnd(after, 0, after.length), 900);
  });

  test('bytes that only look like stop bytes to a careless word test never stop a run', () => {
    // 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff: neighbours of the stop values and high bytes.
    const plain = Buffer.from([0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff]);
    const chunk = Buffer.alloc(4096);
    for (let k = 0; k < chunk.length; k++) chunk[k] = plain[k % plain.length] as number;
    assert.equal(plainRunEnd(chunk, 0, chunk.length), chunk.length);
    chunk[4000] = 0x1f;
    assert.equal(plainRunEnd(chunk, 0, chunk.length), 4000);
  });
});

