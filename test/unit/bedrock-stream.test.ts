import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { EventStreamToSse } from '../../src/upstream/kinds/bedrock-stream.js';
import { chunkFrame, encodeFrame, exceptionFrame } from '../../tools/mock-upstream/provider-framing.js';
import { GatewayError } from '../../src/core/errors.js';

/** Bedrock's binary event stream in, Anthropic SSE out: exact event bytes, any split, faults coded. */

const EVENTS = [
  '{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":4}}}',
  '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}',
  '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIARgCIkD+/=="}}',
  '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"caf\\u00e9 \u2603 \\"q\\""}}',
  '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}',
  '{"type":"message_stop"}',
];

const WANT = EVENTS.map((e) => `event: ${(JSON.parse(e) as { type: string }).type}\ndata: ${e}\n\n`).join('');
const FRAMES = Buffer.concat(EVENTS.map((e) => chunkFrame(Buffer.from(e))));

async function translate(chunks: Buffer[]): Promise<{ text: string; error: unknown }> {
  const out: Buffer[] = [];
  const sse = new EventStreamToSse();
  Readable.from(chunks).pipe(sse);
  try {
    for await (const chunk of sse as AsyncIterable<Buffer>) out.push(chunk);
    return { text: Buffer.concat(out).toString('utf8'), error: undefined };
  } catch (err) {
    return { text: Buffer.concat(out).toString('utf8'), error: err };
  }
}

describe('EventStreamToSse', () => {
  test('re-emits each chunk as event/data with the exact JSON bytes', async () => {
    const { text, error } = await translate([FRAMES]);
    assert.equal(error, undefined);
    assert.equal(text, WANT);
  });

  test('frames split at every byte boundary give the same SSE', async () => {
    for (let at = 1; at < FRAMES.length; at++) {
      const { text, error } = await translate([FRAMES.subarray(0, at), FRAMES.subarray(at)]);
      assert.equal(error, undefined, `split at ${at}`);
      assert.equal(text, WANT, `split at ${at}`);
    }
  });

  test('one byte at a time', async () => {
    const { text } = await translate(Array.from(FRAMES, (b) => Buffer.from([b])));
    assert.equal(text, WANT);
  });

  test('a body cut mid-frame is a coded body error after the complete events', async () => {
    const first = chunkFrame(Buffer.from(EVENTS[0] as string));
    const second = chunkFrame(Buffer.from(EVENTS[1] as string));
    const { text, error } = await translate([first, second.subarray(0, 20)]);
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.code, 'UPSTREAM_RESPONSE_INVALID');
    assert.match(error.message, /mid-frame/);
    assert.equal(text, `event: message_start\ndata: ${EVENTS[0] as string}\n\n`);
  });

  test('a frame whose CRC does not verify is a coded body error after the events before it', async () => {
    const first = chunkFrame(Buffer.from(EVENTS[0] as string));
    const bad = chunkFrame(Buffer.from(EVENTS[1] as string));
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 0x01;
    const { text, error } = await translate([Buffer.concat([first, bad])]);
    assert.ok(error instanceof GatewayError, String(error));
    assert.equal(error.code, 'UPSTREAM_RESPONSE_INVALID');
    assert.match(error.message, /malformed/);
    assert.equal(text, `event: message_start\ndata: ${EVENTS[0] as string}\n\n`);
  });

  test('a frame length out of bounds is a coded body error, not a wait for 4 GB', async () => {
    const { error } = await translate([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])]);
    assert.ok(error instanceof GatewayError);
    assert.match(error.message, /out of bounds/);
  });

  test('an exception frame becomes an Anthropic SSE error event and ends the stream', async () => {
    for (const [exception, type] of [
      ['throttlingException', 'rate_limit_error'],
      ['modelStreamErrorException', 'api_error'],
      ['internalServerException', 'api_error'],
      ['serviceUnavailableException', 'overloaded_error'],
      ['validationException', 'invalid_request_error'],
    ] as const) {
      const first = chunkFrame(Buffer.from(EVENTS[0] as string));
      const { text, error } = await translate([first, exceptionFrame(exception, 'boom'), chunkFrame(Buffer.from(EVENTS[5] as string))]);
      assert.equal(error, undefined);
      const events = text.split('\n\n').filter((e) => e !== '');
      assert.equal(events.length, 2, text);
      const last = events[1] as string;
      assert.match(last, /^event: error\ndata: /);
      const data = JSON.parse(last.slice(last.indexOf('data: ') + 6)) as { type: string; error: { type: string; message: string } };
      assert.equal(data.type, 'error');
      assert.equal(data.error.type, type, exception);
      // Only a validationException's text (about the client's own request) reaches the client.
      if (exception === 'validationException') assert.match(data.error.message, /boom/);
      else assert.doesNotMatch(data.error.message, /boom/, exception);
    }
  });

  test('other layouts than Bedrock\'s usual one are read by the scanner (envelope key order, type not first, escapes)', async () => {
    const json = '{"index":0,"type":"content_block_stop"}';
    const envelope = JSON.stringify({ p: 'pad', bytes: Buffer.from(json).toString('base64') });
    const headers = { ':event-type': { type: 'string', value: 'chunk' }, ':message-type': { type: 'string', value: 'event' } } as const;
    const escaped = '{"type":"p\\u0069ng"}';
    const { text, error } = await translate([encodeFrame(headers, Buffer.from(envelope)), chunkFrame(Buffer.from(escaped))]);
    assert.equal(error, undefined);
    assert.equal(text, `event: content_block_stop\ndata: ${json}\n\nevent: ping\ndata: ${escaped}\n\n`);
  });

  test('an event JSON spanning lines keeps SSE framing (one data line per line)', async () => {
    const json = '{"type":"ping",\n"x":1}';
    const { text } = await translate([chunkFrame(Buffer.from(json))]);
    assert.equal(text, 'event: ping\ndata: {"type":"ping",\ndata: "x":1}\n\n');
  });
});
