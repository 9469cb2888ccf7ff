import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SseEventTooLarge, SseParser, type SseEvent } from '../../src/upstream/sse.js';
import { UsageMeter } from '../../src/upstream/usage.js';

function parseAll(chunks: Buffer[]): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const c of chunks) parser.push(c);
  return events;
}

const STREAM = [
  ': a comment line\n',
  'event: message_start\r\n',
  'data: {"type":"message_start","message":{"model":"claude-sonnet-5","usage":{"input_tokens":12,"cache_creation_input_tokens":30,"cache_read_input_tokens":4,"output_tokens":1}}}\r\n\r\n',
  'event: ping\rdata: {"type":"ping"}\r\r',
  'event: content_block_delta\n',
  'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"héllo ✓ 😀"}}\n\n',
  'event: message_delta\n',
  'data: {"type":"message_delta",\n',
  'data: "usage":{"output_tokens":5}}\n\n',
  'event: message_delta\n',
  'data: {"type":"message_delta","usage":{"input_tokens":12,"cache_creation_input_tokens":30,"cache_read_input_tokens":4,"output_tokens":9}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join('');

describe('SSE parser', () => {
  test('handles \\n, \\r\\n and \\r line ends, comments and multi-line data', () => {
    const events = parseAll([Buffer.from(STREAM)]);
    assert.deepEqual(events.map((e) => e.event), ['message_start', 'ping', 'content_block_delta', 'message_delta', 'message_delta', 'message_stop']);
    assert.equal(events[3]?.data, '{"type":"message_delta",\n"usage":{"output_tokens":5}}');
    assert.match(events[2]?.data ?? '', /héllo ✓ 😀/);
  });

  test('gives the same events however the bytes are split, at every offset and byte by byte', () => {
    const bytes = Buffer.from(STREAM);
    const whole = parseAll([bytes]);
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.deepEqual(parseAll([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `split at byte ${cut}`);
    }
    assert.deepEqual(parseAll([...bytes].map((b) => Buffer.from([b]))), whole);
  });

  test('an over-long line throws instead of being buffered', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e), 64);
    parser.push(Buffer.from('data: ok\n\n'));
    assert.throws(() => parser.push(Buffer.from('data: ' + 'x'.repeat(100))), SseEventTooLarge);
    assert.deepEqual(events, [{ event: 'message', data: 'ok' }]);
  });

  test('an event that never ends (data lines without the blank line) throws at the cap', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e), 1_000);
    // Each line is short; only the event as a whole grows.
    assert.throws(() => {
      for (let i = 0; i < 1_000; i++) parser.push(Buffer.from('data: 0123456789\n'));
    }, SseEventTooLarge);
    assert.deepEqual(events, []);
  });

  test('events under the cap pass however many there are', () => {
    let count = 0;
    const parser = new SseParser(() => count++, 64);
    for (let i = 0; i < 1_000; i++) parser.push(Buffer.from('event: ping\ndata: {}\n\n'));
    assert.equal(count, 1_000);
  });
});

describe('usage meter', () => {
  test('stream usage: message_start, then the LAST message_delta (cumulative, never added)', () => {
    const bytes = Buffer.from(STREAM);
    for (const cut of [1, 7, 100, 250, bytes.length - 3]) {
      const meter = new UsageMeter(true, false);
      meter.push(bytes.subarray(0, cut));
      meter.push(bytes.subarray(cut));
      assert.equal(meter.finish(), true);
      assert.deepEqual(meter.usage, { input: 12, output: 9, cache_creation: 30, cache_read: 4 });
      assert.equal(meter.model, 'claude-sonnet-5');
      assert.ok(meter.firstTokenAt !== undefined);
    }
  });

  test('plain JSON usage, and an error event in a stream', () => {
    const plain = new UsageMeter(false, true);
    plain.push(Buffer.from('{"model":"claude-haiku-5-5","usage":{"input_tokens":3,'));
    plain.push(Buffer.from('"output_tokens":4,"cache_creation_input_tokens":null,"cache_read_input_tokens":2}}'));
    assert.equal(plain.finish(), true);
    assert.deepEqual(plain.usage, { input: 3, output: 4, cache_creation: 0, cache_read: 2 });

    const failed = new UsageMeter(true, false);
    failed.push(Buffer.from('event: message_start\ndata: {"message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\nevent: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'));
    assert.equal(failed.finish(), true);
    assert.equal(failed.streamErrorType, 'overloaded_error');
    assert.deepEqual(failed.usage, { input: 5, output: 1, cache_creation: 0, cache_read: 0 });
  });
});
