import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import type { ServerResponse } from 'node:http';
import { CallStop } from '../../src/core/call-stop.js';
import { isAbort, UpstreamClient } from '../../src/upstream/client.js';
import { DirectBody } from '../../src/upstream/direct-body.js';
import { deferred, until } from '../helpers/deferred.js';
import { scriptedUpstream, type ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { testUpstreamClient } from '../helpers/upstream-client.js';

/**
 * `UpstreamClient.sendDirect` over real loopback sockets: the answer's body is undici's dispatch
 * handler itself (no body stream), read by events as the flight reads it. Whole answers, a decoded
 * one, the call's stop before and after the head, a cut mid-body, and the connection's permit given
 * back in every case.
 */

function client(url: string): UpstreamClient {
  return testUpstreamClient(url, 2);
}

/** Reads a body by its events, as the flight does. */
function readEvents(body: { on(event: string, listener: (arg?: unknown) => void): unknown }, onChunk?: () => void): Promise<{ text: string; error: unknown }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    body.on('data', (chunk) => {
      chunks.push(chunk as Buffer);
      onChunk?.();
    });
    body.on('end', () => resolve({ text: Buffer.concat(chunks).toString(), error: undefined }));
    body.on('error', (err) => resolve({ text: Buffer.concat(chunks).toString(), error: err }));
  });
}

const request = (stop: CallStop, path = '/v1/messages') => ({ method: 'POST', path, headers: ['content-type', 'application/json'], body: Buffer.from('{}'), signal: stop });

describe('sendDirect: an answer read as it comes, without a body stream', () => {
  let cut: ((res: ServerResponse) => void) | undefined;
  const held = deferred<ServerResponse>();
  let upstream: ScriptedUpstream;
  let gateway: UpstreamClient;
  const ready = (async () => {
    upstream = await scriptedUpstream((req, res) => {
      req.resume();
      if (req.url === '/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync('{"decoded":true}'));
      } else if (req.url === '/held') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: ping\n\n');
        held.resolve(res);
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: ping\n\n');
        cut?.(res);
      } else if (req.url === '/never') {
        // no head: the call's stop must end the wait
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_1' });
        res.end('{"ok":true}');
      }
    });
    gateway = client(upstream.url);
  })();
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  test('a whole answer: head, body by events (no async iteration), the permit back', async () => {
    await ready;
    const answer = await gateway.sendDirect(request(new CallStop()));
    assert.equal(answer.status, 200);
    assert.equal(answer.requestId, 'req_1');
    assert.equal(answer.decoded, false);
    assert.equal(answer.delimited, true);
    assert.ok(answer.body instanceof DirectBody, 'the body is the dispatch handler itself');
    assert.deepEqual(await readEvents(answer.body as never), { text: '{"ok":true}', error: undefined });
    await until(() => gateway.snapshot().active === 0, 5_000, 'the permit to come back');
  });

  test('a compressed answer is decoded (and said to be)', async () => {
    await ready;
    const answer = await gateway.sendDirect(request(new CallStop(), '/gzip'));
    assert.equal(answer.decoded, true);
    assert.deepEqual(await readEvents(answer.body as never), { text: '{"decoded":true}', error: undefined });
  });

  test("the call's stop before the head rejects with the abort; after the head the body fails with it; permits come back", async () => {
    await ready;
    const early = new CallStop();
    const waiting = gateway.sendDirect(request(early, '/never'));
    early.abort();
    await assert.rejects(waiting, (err) => isAbort(err));

    const stop = new CallStop();
    const answer = await gateway.sendDirect(request(stop, '/held'));
    let first = false;
    const read = readEvents(answer.body, () => (first = true));
    const res = await held.promise;
    await until(() => first, 5_000, 'the first bytes');
    stop.abort();
    const { error } = await read;
    assert.ok(isAbort(error), 'the body ends with the abort');
    await until(() => res.destroyed || res.socket === null || res.socket.destroyed, 5_000, 'the upstream connection to be closed');
    await until(() => gateway.snapshot().active === 0, 5_000, 'the permits to come back');
  });

  test('an upstream cut mid-body fails the body (never an end)', async () => {
    await ready;
    cut = (res) => setImmediate(() => res.socket?.destroy());
    const answer = await gateway.sendDirect(request(new CallStop(), '/cut'));
    const { text, error } = await readEvents(answer.body);
    assert.ok(error instanceof Error);
    assert.equal(text, 'event: ping\n\n');
    await until(() => gateway.snapshot().active === 0, 5_000, 'the permit to come back');
  });

  test('readable() (what a peek or a whole read uses) gives the same bytes by async iteration', async () => {
    await ready;
    const answer = await gateway.sendDirect(request(new CallStop()));
    const chunks: Buffer[] = [];
    for await (const chunk of answer.body as DirectBody) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString(), '{"ok":true}');
  });
});
