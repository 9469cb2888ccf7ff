import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { readBody, readBodyThen } from '../../src/http/body.js';
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

  test('a body that came with its head is told in the parser\'s own turn, not on a tick after it', async () => {
    // The head and the body in one write: node's parser reads them in one go, emitting 'request' at the
    // head and reaching the body after the handler returned. A tick queued by the handler runs only once
    // that read is over: told before it, the body was taken as the parser reached it.
    const told: { afterTick: boolean; body: Buffer | undefined }[] = [];
    const server = createServer((req, res) => {
      let ticked = false;
      process.nextTick(() => {
        ticked = true;
      });
      readBodyThen(req, 1024 * 1024, undefined, false, {
        bodyRead: (error, bytes) => {
          told.push({ afterTick: ticked, body: bytes });
          res.statusCode = error === undefined ? 200 : 400;
          res.end();
        },
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      const answered = new Promise<string>((resolve, reject) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (text.includes('\r\n\r\n')) resolve(text);
        });
        socket.on('error', reject);
      });
      socket.write(Buffer.concat([Buffer.from(`POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${BODY.length}\r\n\r\n`), BODY]));
      assert.match(await answered, /^HTTP\/1\.1 200 /);
      socket.destroy();
      assert.equal(told.length, 1);
      assert.ok(told[0]?.body?.equals(BODY));
      assert.equal(told[0]?.afterTick, false, 'told while node was still reading the request, before any tick');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
