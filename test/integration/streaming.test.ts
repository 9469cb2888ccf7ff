import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { deferred, until, type Deferred } from '../helpers/deferred.js';
import { scriptedUpstream, sseEvent } from '../helpers/scripted-upstream.js';
import { startTestGateway } from '../helpers/stack.js';

async function gatewayFor(upstreamUrl: string) {
  return startTestGateway({ UPSTREAM_URL: upstreamUrl });
}

describe('event streams', () => {
  test('each SSE event reaches the client before upstream sends the next (no buffering)', async () => {
    const released: Deferred<void>[] = [deferred(), deferred(), deferred()];
    const upstream = await scriptedUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      void (async () => {
        for (let i = 0; i < released.length; i++) {
          res.write(sseEvent('ping', { type: 'ping', n: i }));
          // The next event is only written once the client has proven it received this one.
          await released[i]?.promise;
        }
        res.end();
      })();
    });
    const gateway = await gatewayFor(upstream.url);
    try {
      const received: string[] = await new Promise((resolve, reject) => {
        const req = request(`${gateway.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          assert.equal(res.headers['content-type'], 'text/event-stream');
          assert.equal(res.headers['content-encoding'], undefined);
          const events: string[] = [];
          let pending = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            pending += chunk;
            let end;
            while ((end = pending.indexOf('\n\n')) !== -1) {
              events.push(pending.slice(0, end));
              pending = pending.slice(end + 2);
              released[events.length - 1]?.resolve();
            }
          });
          res.on('end', () => resolve(events));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end('{}');
      });
      assert.equal(received.length, 3);
      assert.match(received[2] ?? '', /"n":2/);
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('a client that stops reading pauses the upstream: the gateway does not buffer without bound', async () => {
    const total = 64 * 1024 * 1024;
    // Well-formed 64 KiB events (an endless single event would be cut at MAX_SSE_EVENT_BYTES).
    const chunk = Buffer.from(`data: ${'a'.repeat(64 * 1024 - 8)}\n\n`);
    let written = 0;
    const upstreamDone = deferred();
    const upstream = await scriptedUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
        upstreamDone.resolve();
      };
      pump();
    });
    const gateway = await gatewayFor(upstream.url);
    try {
      let received = 0;
      const clientDone = deferred();
      const req = request(`${gateway.url}/v1/messages`, { method: 'POST' }, (res) => {
        res.pause();
        // Wait until the upstream writer is held back by backpressure: it stops advancing.
        void (async () => {
          let last = -1;
          let still = 0;
          await until(() => {
            still = written === last ? still + 1 : 0;
            last = written;
            return still >= 25 || written >= total;
          }, 20_000, 'upstream writes to stop advancing');
          assert.ok(written < total / 2, `upstream wrote ${written} bytes while the client read nothing`);
          res.on('data', (c: Buffer) => (received += c.length));
          res.on('end', () => clientDone.resolve());
          res.resume();
        })().catch(clientDone.reject);
      });
      req.end();
      await clientDone.promise;
      await upstreamDone.promise;
      assert.equal(received, total, 'every byte arrives once the client reads again');
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });

  test('a client that disconnects mid-stream aborts the upstream request', async () => {
    const upstreamClosed = deferred();
    const firstEventSent = deferred();
    const upstream = await scriptedUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sseEvent('message_start', { type: 'message_start' }));
      firstEventSent.resolve();
      res.on('close', () => upstreamClosed.resolve());
    });
    const gateway = await gatewayFor(upstream.url);
    try {
      const req = request(`${gateway.url}/v1/messages`, { method: 'POST' }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => undefined);
      req.end();
      await firstEventSent.promise;
      await upstreamClosed.promise;
      await until(() => gateway.activeRequests() === 0, 5_000, 'the gateway to forget the request');
    } finally {
      await gateway.shutdown();
      await upstream.close();
    }
  });
});
