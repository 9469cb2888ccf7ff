import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { Socket } from 'node:net';
import { scrape, sum } from '../helpers/prom.js';
import { scriptedUpstream } from '../helpers/scripted-upstream.js';
import { selfSignedCert } from '../helpers/tls-cert.js';
import { startUpstreamsGateway, type UpstreamEntry } from '../helpers/upstreams-stack.js';

/**
 * README (Failover): one client call makes at most FAILOVER_MAX_ATTEMPTS upstream attempts in total,
 * failover moves and gateway retries together; every upstream gets at most one of them, except the last
 * one tried, which may be retried while attempts are left. Each case counts, on real upstreams, exactly
 * how many attempts each one received for one client call whose every attempt fails.
 */

const PARAMS = { model: 'claude-sonnet-5', max_tokens: 16, messages: [{ role: 'user' as const, content: 'bounded' }] };
/** No breaker (each case is one call anyway), no back-off worth waiting for, a budget that never runs dry in one call. */
const QUIET = { BREAKER: 'off', RETRY_BASE_DELAY_MS: '1', RETRY_MAX_DELAY_MS: '1', RETRY_BUDGET_PERCENT: '100' };

interface CountingUpstream {
  url: string;
  /** Attempts this upstream received so far (requests, or connections for a connect failure). */
  readonly attempts: number;
  /** Extra entry fields the gateway needs to reach it. */
  entry: Record<string, unknown>;
  close(): Promise<void>;
}

const OVERLOADED = JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });

/** Answers every request 529 overloaded_error, counting requests (counted before the answer leaves). */
async function overloadedUpstream(): Promise<CountingUpstream> {
  let attempts = 0;
  const s = await scriptedUpstream((req, res) => {
    attempts++;
    req.resume();
    req.on('end', () => {
      res.writeHead(529, { 'content-type': 'application/json' });
      res.end(OVERLOADED);
    });
  });
  return { url: s.url, get attempts() { return attempts; }, entry: {}, close: () => s.close() };
}

const tls = selfSignedCert();

/**
 * A connect failure that can be counted: a TLS server that offers only HTTP/1.1, for an entry with
 * `http2: true`. The gateway's connector refuses the connection after the handshake (nothing of the
 * request is sent: UPSTREAM_CONNECT_FAILED, as a refused connection). The server accepts each
 * connection before it answers the ClientHello, so every attempt is counted before the gateway learns
 * it failed.
 */
async function connectFailingUpstream(): Promise<CountingUpstream> {
  if (tls === undefined) throw new Error('openssl is not installed');
  let attempts = 0;
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({ key: tls.key, cert: tls.cert, ALPNProtocols: ['http/1.1'] }, (socket) => socket.on('error', () => undefined));
  server.on('connection', (socket: Socket) => {
    attempts++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    get attempts() {
      return attempts;
    },
    entry: { http2: true },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Case {
  what: string;
  fault: '529' | 'connect';
  upstreams: number;
  env: Record<string, string>;
  /** Attempts each upstream gets, in order of preference. */
  expect: number[];
}

const CASES: Case[] = [
  // RETRY_ON_OVERLOADED=on, UPSTREAM_RETRIES=2 (default), FAILOVER_MAX_ATTEMPTS=3 (default): the case.
  { what: '529, retries on, 1 upstream', fault: '529', upstreams: 1, env: { RETRY_ON_OVERLOADED: 'on' }, expect: [3] },
  { what: '529, retries on, 2 upstreams', fault: '529', upstreams: 2, env: { RETRY_ON_OVERLOADED: 'on' }, expect: [1, 2] },
  { what: '529, retries on, 3 upstreams', fault: '529', upstreams: 3, env: { RETRY_ON_OVERLOADED: 'on' }, expect: [1, 1, 1] },
  { what: '529, retries on, 4 upstreams (the limit ends the call before the last)', fault: '529', upstreams: 4, env: { RETRY_ON_OVERLOADED: 'on' }, expect: [1, 1, 1, 0] },
  { what: '529, retries on, UPSTREAM_RETRIES=0, 1 upstream', fault: '529', upstreams: 1, env: { RETRY_ON_OVERLOADED: 'on', UPSTREAM_RETRIES: '0' }, expect: [1] },
  { what: '529, retries on, UPSTREAM_RETRIES=0, 3 upstreams', fault: '529', upstreams: 3, env: { RETRY_ON_OVERLOADED: 'on', UPSTREAM_RETRIES: '0' }, expect: [1, 1, 1] },
  { what: '529, retries off, 1 upstream', fault: '529', upstreams: 1, env: {}, expect: [1] },
  { what: '529, retries off, 2 upstreams', fault: '529', upstreams: 2, env: {}, expect: [1, 1] },
  { what: '529, retries off, 3 upstreams', fault: '529', upstreams: 3, env: {}, expect: [1, 1, 1] },
  { what: '529, UPSTREAM_RETRIES=5 above the limit, 1 upstream', fault: '529', upstreams: 1, env: { RETRY_ON_OVERLOADED: 'on', UPSTREAM_RETRIES: '5' }, expect: [3] },
  { what: '529, FAILOVER_MAX_ATTEMPTS=1: no move, no retry', fault: '529', upstreams: 2, env: { RETRY_ON_OVERLOADED: 'on', FAILOVER_MAX_ATTEMPTS: '1' }, expect: [1, 0] },
  { what: '529, FAILOVER_MAX_ATTEMPTS=5, 2 upstreams: the last one takes the retries', fault: '529', upstreams: 2, env: { RETRY_ON_OVERLOADED: 'on', FAILOVER_MAX_ATTEMPTS: '5' }, expect: [1, 3] },
  // Connect failures are retried whatever RETRY_ON_OVERLOADED says.
  { what: 'connect failure, 1 upstream', fault: 'connect', upstreams: 1, env: {}, expect: [3] },
  { what: 'connect failure, 2 upstreams', fault: 'connect', upstreams: 2, env: {}, expect: [1, 2] },
  { what: 'connect failure, 3 upstreams', fault: 'connect', upstreams: 3, env: { RETRY_ON_OVERLOADED: 'on' }, expect: [1, 1, 1] },
  { what: 'connect failure, UPSTREAM_RETRIES=0, 2 upstreams', fault: 'connect', upstreams: 2, env: { UPSTREAM_RETRIES: '0' }, expect: [1, 1] },
];

describe('attempts per client call are bounded by FAILOVER_MAX_ATTEMPTS, retries included', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });
  after(() => tls?.remove());
  const skip = tls === undefined ? 'openssl is not installed' : false;

  for (const c of CASES) {
    test(`${c.what}: ${JSON.stringify(c.expect)}`, { skip: c.fault === 'connect' ? skip : false }, async () => {
      const upstreams: CountingUpstream[] = [];
      for (let i = 0; i < c.upstreams; i++) {
        const u = c.fault === '529' ? await overloadedUpstream() : await connectFailingUpstream();
        cleanup.push(() => u.close());
        upstreams.push(u);
      }
      // One tier each, in order: the call tries them first to last.
      const entries: UpstreamEntry[] = upstreams.map((u, i) => ({ name: `u${i}`, url: u.url, tier: i, ...u.entry }));
      const env: Record<string, string> = { ...QUIET, ...c.env, ...(c.fault === 'connect' && tls !== undefined ? { UPSTREAM_CA_FILE: tls.certFile } : {}) };
      const stack = await startUpstreamsGateway(entries, env);
      cleanup.push(() => stack.close());

      const status = c.fault === '529' ? 529 : 502;
      await assert.rejects(stack.client().messages.create(PARAMS), (err: unknown) => (err as { status?: number }).status === status);

      assert.deepEqual(upstreams.map((u) => u.attempts), c.expect, 'attempts each upstream received');
      const limit = Number(c.env.FAILOVER_MAX_ATTEMPTS ?? '3');
      assert.ok(c.expect.reduce((a, b) => a + b, 0) <= limit, 'the case itself respects the documented bound');
      const samples = await scrape(stack.gateway.url);
      const moves = sum(samples, 'upstream_failovers_total');
      const retries = sum(samples, 'upstream_retries_total', { reason: c.fault === '529' ? 'overloaded' : 'connect' });
      assert.equal(1 + moves + retries, c.expect.reduce((a, b) => a + b, 0), 'every attempt after the first is a move or a retry');
    });
  }
});
