import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { readBody } from '../../src/http/body.js';
import { GatewayError } from '../../src/core/errors.js';

/** A request body as node's parser hands it over: chunks pushed one by one; the end only when `end()` is called. */
function request(headers: Record<string, string>): PassThrough {
  return Object.assign(new PassThrough(), { headers });
}

/** The stream as the request readBody takes (it reads only its headers and events). */
function asRequest(stream: PassThrough): IncomingMessage {
  return stream as unknown as IncomingMessage;
}

const BODY = Buffer.from('{"model":"claude-sonnet-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}');

describe('readBody', () => {
  test('a body with a declared length is whole at its last byte: read without waiting for the end of the stream', async () => {
    const req = request({ 'content-type': 'application/json', 'content-length': String(BODY.length) });
    const reading = readBody(asRequest(req), 1024 * 1024);
    req.write(BODY.subarray(0, 10));
    req.write(BODY.subarray(10));
    // The stream never ends here: the read must not need it.
    const read = await reading;
    assert.ok(read.bytes.equals(BODY));
    assert.equal(read.model, 'claude-sonnet-5');
    // The end and a late error after the read was told change nothing (the listeners stay, as no-ops).
    req.end();
    req.emit('error', new Error('late'));
  });

  test('a chunked body (no declared length) is whole only at its end', async () => {
    const req = request({ 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    let told = false;
    const reading = readBody(asRequest(req), 1024 * 1024).then((read) => {
      told = true;
      return read;
    });
    req.write(BODY);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(told, false, 'not before the end');
    req.end();
    assert.ok((await reading).bytes.equals(BODY));
  });

  test('a client that goes away mid-body: BODY_READ_FAILED; past the cap: BODY_TOO_LARGE, the rest discarded', async () => {
    const gone = request({ 'content-type': 'application/json', 'content-length': '1000' });
    const reading = readBody(asRequest(gone), 1024 * 1024);
    gone.write(BODY);
    gone.emit('aborted');
    await assert.rejects(reading, (err: unknown) => err instanceof GatewayError && err.code === 'BODY_READ_FAILED');

    const big = request({ 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const refused = readBody(asRequest(big), 50);
    big.write(BODY);
    await assert.rejects(refused, (err: unknown) => err instanceof GatewayError && err.code === 'BODY_TOO_LARGE');
    big.write(BODY);
    big.end();
  });
});
