import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Gateway } from '../../src/server.js';
import { deferred, drainedOrClosed, eventually, until } from '../helpers/deferred.js';
import { LogCapture } from '../helpers/log-capture.js';
import { scriptedUpstream, sseEvent, type ScriptedUpstream } from '../helpers/scripted-upstream.js';
import { TEST_API_KEY, launchGateway } from '../helpers/stack.js';

/**
 * Liveness over real sockets: nothing a client or an upstream does can pin a flight, a capacity
 * slot, an upstream socket or a breaker. Each test waits with `until()` (fails loudly at its
 * deadline), never with a sleep.
 */

const DELTA = sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x'.repeat(16 * 1024) } });

interface Upstream extends ScriptedUpstream {
  /** Requests that reached it, and those whose connection the gateway closed or that ended. */
  arrived: number;
  closed: number;
  bytesWritten: number;
}

/** Writes `write(res)` for each request; tracks arrivals and closes. */
async function upstreamOf(write: (req: IncomingMessage, res: ServerResponse, up: Upstream) => void | Promise<void>): Promise<Upstream> {
  const up = { arrived: 0, closed: 0, bytesWritten: 0 } as Upstream;
  const server = await scriptedUpstream((req, res) => {
    up.arrived++;
    res.once('close', () => up.closed++);
    req.resume();
    req.once('end', () => void write(req, res, up));
  });
  return Object.assign(up, server);
}

/** Streams `total` bytes of deltas with backpressure (stops early when the gateway goes away), then ends. */
async function streamDeltas(res: ServerResponse, up: Upstream, total: number, pauseAt?: { bytes: number; until: Promise<void> }): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(sseEvent('message_start', { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-5', usage: { input_tokens: 1, output_tokens: 1 } } }));
  let paused = false;
  while (up.bytesWritten < total && !res.destroyed) {
    if (pauseAt !== undefined && !paused && up.bytesWritten >= pauseAt.bytes) {
      paused = true;
      await pauseAt.until;
    }
    up.bytesWritten += DELTA.length;
    if (!res.write(DELTA)) await drainedOrClosed(res);
  }
  if (!res.destroyed) res.end(sseEvent('message_stop', { type: 'message_stop' }));
}

async function gatewayFor(upstreamUrl: string, env: Record<string, string> = {}): Promise<{ gateway: Gateway; logs: LogCapture }> {
  const { gateway, logs } = await launchGateway({ UPSTREAM_URL: upstreamUrl, ...env });
  return { gateway, logs };
}

function streamBody(content: string): string {
  return JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content }] });
}

function rawRequest(body: string): string {
  return `POST /v1/messages HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\nx-api-key: ${TEST_API_KEY}\r\nanthropic-version: 2023-06-01\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A client that sends its request and never reads a byte of the answer. */
async function stalledClient(url: string, payload: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((r) => socket.once('connect', r));
  socket.pause();
  socket.write(payload);
  return socket;
}

/** A normal client that reads everything; resolves with the whole body. */
function readingClient(url: string, body: string, onBytes?: (total: number) => void): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': TEST_API_KEY, 'anthropic-version': '2023-06-01' } }, (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        total += c.length;
        onBytes?.(total);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function scrape(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

describe('liveness: stalled clients', () => {
  test('a lone client that stops reading is dropped at CLIENT_WRITE_STALL_MS; its flight, slot and upstream socket are freed', async () => {
    const up = await upstreamOf((_req, res, u) => streamDeltas(res, u, 256 * 1024 * 1024));
    const { gateway, logs } = await gatewayFor(up.url, { CLIENT_WRITE_STALL_MS: '300' });
    const socket = await stalledClient(gateway.url, rawRequest(streamBody('stall')));
    try {
      await until(() => up.arrived === 1, 5_000, 'the call to reach upstream');
      await until(() => up.closed === 1, 15_000, 'the gateway to abandon the upstream call');
      await until(() => gateway.activeRequests() === 0 && gateway.flights.size === 0, 5_000, 'the slot and the flight to be freed');
      assert.ok(up.bytesWritten < 64 * 1024 * 1024, `stopped early (${up.bytesWritten} bytes)`);
      await until(() => logs.records().some((r) => r.code === 'STALLED_CLIENT_DROPPED'), 5_000, 'the drop to be logged');
    } finally {
      socket.destroy();
      await gateway.shutdown();
      await up.close();
    }
  });

  test('a half-open probe whose client stalls settles at its head: the breaker closes and others are served', async () => {
    let failing = true;
    const up = await upstreamOf((_req, res, u) => {
      if (failing) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"api_error","message":"down"}}');
        return;
      }
      return streamDeltas(res, u, 256 * 1024 * 1024);
    });
    const { gateway } = await gatewayFor(up.url, { BREAKER_VOLUME_THRESHOLD: '1', BREAKER_RESET_TIMEOUT_MS: '200', CLIENT_WRITE_STALL_MS: '60000' });
    const sockets: Socket[] = [];
    try {
      assert.equal((await readingClient(gateway.url, streamBody('fail'))).status, 500);
      assert.equal((await readingClient(gateway.url, streamBody('refused'))).status, 529, 'open after one failure');
      failing = false;
      // The breaker turns half-open after its reset timeout: wait for the gauge, not a fixed time.
      await eventually(async () => (await scrape(gateway.url, 'circuit_breaker_state{')) === 1, 5_000, 'the breaker to turn half-open');
      sockets.push(await stalledClient(gateway.url, rawRequest(streamBody('stalled probe'))));
      await until(() => up.arrived === 2, 5_000, 'the probe to reach upstream');
      const other = await readingClient(gateway.url, JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'next' }] }), undefined);
      assert.equal(other.status, 200, 'the breaker closed although the probe client never read');
    } finally {
      for (const s of sockets) s.destroy();
      await gateway.shutdown();
      await up.close();
    }
  });

  test('a probe that gets no headers within BREAKER_PROBE_TIMEOUT_MS counts as a failure', async () => {
    let mode: 'fail' | 'hang' = 'fail';
    const up = await upstreamOf((_req, res) => {
      if (mode === 'fail') res.writeHead(500, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"api_error","message":"down"}}');
      // 'hang': never answers (until the gateway gives up on it)
    });
    const { gateway, logs } = await gatewayFor(up.url, { BREAKER_VOLUME_THRESHOLD: '1', BREAKER_RESET_TIMEOUT_MS: '200', BREAKER_PROBE_TIMEOUT_MS: '300' });
    try {
      assert.equal((await readingClient(gateway.url, streamBody('fail'))).status, 500);
      mode = 'hang';
      await eventually(async () => (await scrape(gateway.url, 'circuit_breaker_state{')) === 1, 5_000, 'the breaker to turn half-open');
      const probe = readingClient(gateway.url, streamBody('hanging probe')).catch(() => undefined);
      await until(() => up.arrived === 2, 5_000, 'the probe to reach upstream');
      await until(() => logs.records().filter((r) => r.msg === 'circuit breaker opened').length === 2, 5_000, 'the probe deadline to re-open the breaker');
      void probe;
    } finally {
      await gateway.shutdown();
      await up.close();
    }
  });
});

describe('liveness: pipelined clients that vanish', () => {
  test('abandoned pipelined requests free their capacity slots and stop their upstream calls', async () => {
    const up = await upstreamOf(() => undefined); // holds every request until its connection closes
    const { gateway } = await gatewayFor(up.url);
    try {
      const payload = Array.from({ length: 30 }, (_, i) => rawRequest(streamBody(`pipelined ${i}`))).join('');
      const socket = await stalledClient(gateway.url, payload);
      await until(() => up.arrived === 30, 10_000, 'all 30 pipelined calls to reach upstream');
      assert.equal(gateway.activeRequests(), 30);
      socket.destroy();
      await until(() => gateway.activeRequests() === 0, 5_000, 'every slot to be released');
      await until(() => up.closed === 30, 5_000, 'every upstream call to be stopped');
      const forced = await gateway.shutdown();
      assert.equal(forced.forced, 0, 'nothing left for the drain to wait for');
    } finally {
      await gateway.shutdown();
      await up.close();
    }
  });
});

describe('liveness: late joiners', () => {
  test('a client joining a stream after 2 MiB gets the whole replay at its own pace (defaults), not dropped', async () => {
    const release = deferred();
    const up = await upstreamOf((_req, res, u) => streamDeltas(res, u, 3 * 1024 * 1024, { bytes: 2 * 1024 * 1024, until: release.promise }));
    const { gateway } = await gatewayFor(up.url);
    try {
      const body = streamBody('late joiner');
      const reachedTwoMiB = deferred();
      const first = readingClient(gateway.url, body, (n) => n >= 2 * 1024 * 1024 && reachedTwoMiB.resolve());
      await reachedTwoMiB.promise;
      const late = readingClient(gateway.url, body);
      await until(() => gateway.flights.subscribers() === 2, 5_000, 'the late client to join');
      release.resolve();
      const [a, b] = await Promise.all([first, late]);
      assert.equal(up.arrived, 1, 'one upstream call');
      assert.match(b.body.toString('utf8', b.body.length - 100), /message_stop/);
      assert.ok(a.body.equals(b.body), 'byte-identical');
    } finally {
      release.resolve();
      await gateway.shutdown();
      await up.close();
    }
  });

  test('a subscriber that falls too far behind the others is dropped alone; the others receive everything', async () => {
    const release = deferred();
    const total = 48 * 1024 * 1024;
    const up = await upstreamOf((_req, res, u) => streamDeltas(res, u, total, { bytes: 0, until: release.promise }));
    // Only the lag rule can act: the stall deadline is far away.
    const { gateway, logs } = await gatewayFor(up.url, { COALESCE_MAX_REPLAY_BYTES: String(64 * 1024), COALESCE_SUBSCRIBER_BUFFER_BYTES: String(256 * 1024), CLIENT_WRITE_STALL_MS: '600000' });
    const body = streamBody('slow subscriber');
    const slow = await stalledClient(gateway.url, rawRequest(body));
    try {
      await until(() => gateway.flights.subscribers() === 1, 5_000, 'the slow client to lead');
      const fast = readingClient(gateway.url, body);
      await until(() => gateway.flights.subscribers() === 2, 5_000, 'the fast client to join');
      release.resolve();
      const answer = await fast;
      assert.equal(up.arrived, 1, 'one upstream call for both');
      assert.ok(answer.body.length > total, `the fast client received the whole stream (${answer.body.length} bytes, ends ${answer.body.toString('utf8', answer.body.length - 200)})`);
      assert.match(answer.body.toString('utf8', answer.body.length - 100), /message_stop/);
      // The dropped client's request line is written when its connection closes.
      slow.destroy();
      await until(() => logs.records().some((r) => r.code === 'SLOW_CLIENT_DROPPED'), 5_000, 'the slow client to be dropped for lag');
    } finally {
      release.resolve();
      slow.destroy();
      await gateway.shutdown();
      await up.close();
    }
  });
});

describe('liveness: misbehaving upstreams', () => {
  test('an SSE event that never ends fails the stream at MAX_SSE_EVENT_BYTES with a final error event; memory stays bounded', async () => {
    const line = `data: ${'y'.repeat(1024)}\n`;
    const up = await upstreamOf(async (_req, res, u) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      while (u.bytesWritten < 256 * 1024 * 1024 && !res.destroyed) {
        u.bytesWritten += line.length;
        if (!res.write(line)) await drainedOrClosed(res);
      }
      if (!res.destroyed) res.end();
    });
    const { gateway } = await gatewayFor(up.url, { MAX_SSE_EVENT_BYTES: String(256 * 1024) });
    try {
      const answer = await readingClient(gateway.url, streamBody('endless'));
      const tail = answer.body.toString('utf8', Math.max(0, answer.body.length - 300));
      assert.match(tail, /event: error/);
      await until(() => up.closed === 1, 5_000, 'the upstream stream to be cut');
      assert.ok(up.bytesWritten < 64 * 1024 * 1024, `cut early (${up.bytesWritten} bytes)`);
    } finally {
      await gateway.shutdown();
      await up.close();
    }
  });
});

describe('upstream timing metrics', () => {
  test('claude_api_duration_seconds starts at the request sent (after retry waits); gateway_overhead_seconds is recorded', async () => {
    let calls = 0;
    const up = await upstreamOf((_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(529, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"type":"error","error":{"type":"overloaded_error","message":"busy"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"type":"message","usage":{"input_tokens":1,"output_tokens":1}}');
    });
    const { gateway } = await gatewayFor(up.url, { RETRY_ON_OVERLOADED: 'on', UPSTREAM_RETRIES: '1', RETRY_MAX_DELAY_MS: '2000' });
    try {
      const started = performance.now();
      const answer = await readingClient(gateway.url, JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 8, messages: [{ role: 'user', content: 'timed' }] }));
      const waited = (performance.now() - started) / 1000;
      assert.equal(answer.status, 200);
      assert.ok(waited >= 1, 'the client waited through the retry-after');
      const duration = await scrape(gateway.url, 'claude_api_duration_seconds_sum');
      assert.ok(duration < 0.9, `duration ${duration}s excludes the 1 s retry wait`);
      assert.equal(await scrape(gateway.url, 'gateway_overhead_seconds_count'), 1);
    } finally {
      await gateway.shutdown();
      await up.close();
    }
  });
});
