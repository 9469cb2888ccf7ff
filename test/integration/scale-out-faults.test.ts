import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import type { Gateway } from '../../src/server.js';
import { until } from '../helpers/deferred.js';
import { pacedUpstream, type PacedUpstream } from '../helpers/paced-upstream.js';
import { redisForSuite, type RedisServer } from '../helpers/redis-server.js';
import { eventually, metric, rawStream, redisAvailable, remoteGaugesAtZero, spawnGateway, startInstance, withPair, within, type GatewayProcess, type RawStream } from '../helpers/scale-out.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Cross-instance coalescing under faults (issue 12), on a real redis-server with real gateways
 * (in-process, or whole processes where the fault is the process itself). For every fault: each
 * client gets the complete, byte-identical answer or an explicit error, within a bounded time;
 * nothing is billed twice; the remote-flight gauges return to zero.
 */

/** Short claims so that faults resolve fast (heartbeats and reader rounds every 500 ms), with room for a loaded machine. */
const FAST = { REDIS_CLAIM_TTL_MS: '1500', REDIS_COMMAND_TIMEOUT_MS: '500', REDIS_RETRY_MS: '200' };
/** The longest a follower may take to fail once Redis or its leader is gone (claim TTL, reader deadline, slack). */
const FAULT_BOUND_MS = 5_000;

let seq = 0;
function streamBody(): string {
  return JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: `fault ${Date.now()} ${++seq}` }] });
}

async function gateway(upstreamUrl: string, redisUrl: string, env: Record<string, string> = {}): Promise<Gateway> {
  return startInstance(upstreamUrl, redisUrl, { ...FAST, ...env });
}

interface PacedPair {
  up: PacedUpstream;
  a: Gateway;
  b: Gateway;
  /** Between B and Redis when the pair was asked `proxied` (to cut B alone); reading it otherwise throws. */
  readonly proxy: TcpProxy;
}

/** A paced upstream and instances A and B (FAST claims) on `redis`, B through a TCP proxy if `proxied`; everything ended after `run`. */
async function onPacedPair(redis: RedisServer, run: (pair: PacedPair) => Promise<void>, options: { env?: Record<string, string>; proxied?: boolean } = {}): Promise<void> {
  const up = await pacedUpstream();
  const proxy = options.proxied === true ? await startTcpProxy(redis.port) : undefined;
  await withPair(
    {
      upstreamUrl: up.url,
      redisUrl: redis.url,
      redisUrlB: proxy === undefined ? undefined : `redis://127.0.0.1:${proxy.port}`,
      env: { ...FAST, ...options.env },
      release: () => up.release(),
      close: async () => {
        await proxy?.close();
        await up.close();
      },
    },
    (a, b) =>
      run({
        up,
        a,
        b,
        get proxy(): TcpProxy {
          if (proxy === undefined) throw new Error('this pair has no proxy (ask `proxied`)');
          return proxy;
        },
      }),
  );
}

/** Billed output tokens on these instances together. */
async function billedOutput(urls: string[]): Promise<number> {
  let total = 0;
  for (const url of urls) total += await metric(url, 'claude_tokens_total', { type: 'output' });
  return total;
}

async function gaugesReturnToZero(urls: string[]): Promise<void> {
  for (const url of urls) await eventually(() => remoteGaugesAtZero(url), 10_000, `remote-flight gauges back to zero on ${url}`);
}

/** A: leads a paced stream; B: follows it through Redis and has received the first part. */
async function leadAndFollow(up: PacedUpstream, a: string, b: string, body = streamBody()): Promise<{ onA: RawStream; onB: RawStream }> {
  const before = up.calls;
  const onA = rawStream(a, body);
  await until(() => up.calls === before + 1, 5_000, 'A to call upstream');
  await within(onA.received(), 5_000, 'the first bytes on A');
  const onB = rawStream(b, body);
  await within(onB.received(), 5_000, 'the first bytes on B (relayed from A)');
  assert.equal((await onB.headers)['x-gateway-coalesce-role'], 'follower', 'an answer from another instance\'s call is a follower\'s');
  assert.equal(up.calls, before + 1, 'B followed A instead of calling upstream');
  return { onA, onB };
}

function assertExplicitError(text: string): void {
  assert.ok(!text.includes('event: message_stop'), 'an interrupted answer must not look complete');
  assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/, 'the follower got an explicit Anthropic error event');
}

describe('cross-instance coalescing under faults', () => {
  const redis = redisForSuite();

  test('the leader\'s own client leaves: the remote follower still gets the whole answer, from the one upstream call', async () => {
    await onPacedPair(redis, async ({ up, a, b }) => {
      const { onA, onB } = await leadAndFollow(up, a.url, b.url);
      // A has counted B as a listener of its flight (its heartbeat saw B's registration).
      await eventually(async () => (await metric(a.url, 'remote_flight_listeners')) === 1, 5_000, 'A to see its remote listener');
      onA.destroy();
      await until(() => a.flights.subscribers() === 0, 5_000, 'A\'s client to be gone');
      up.release();
      const text = await within(onB.done, FAULT_BOUND_MS, 'B\'s answer');
      assert.equal(text, up.expected, 'B received every byte of the answer');
      assert.equal(up.calls, 1);
      assert.equal(up.abandoned, 0, 'the upstream call was not aborted while B listened');
      assert.equal(await billedOutput([a.url, b.url]), up.outputTokens, 'billed once, by the leader');
      assert.equal(await metric(b.url, 'claude_tokens_saved_total', { type: 'output', source: 'coalesced' }), up.outputTokens);
      await gaugesReturnToZero([a.url, b.url]);
    });
  });

  test('when no client listens on any instance, the upstream call is aborted', async () => {
    await onPacedPair(redis, async ({ up, a, b }) => {
      const { onA, onB } = await leadAndFollow(up, a.url, b.url);
      await eventually(async () => (await metric(a.url, 'remote_flight_listeners')) === 1, 5_000, 'A to see its remote listener');
      onA.destroy();
      onB.destroy();
      await until(() => up.abandoned === 1, FAULT_BOUND_MS, 'the upstream call to be aborted once nobody listens anywhere');
      await gaugesReturnToZero([a.url, b.url]);
    });
  });

  test('a leader stalled past its claim (SIGSTOP) cannot delete its successor\'s claim when it resumes', async (t) => {
    const up = await pacedUpstream({ holdHead: true });
    let leader: GatewayProcess | undefined;
    const b = await gateway(up.url, redis.url);
    const probe = createClient({ url: redis.url });
    await probe.connect();
    try {
      leader = await spawnGateway({ UPSTREAM_URL: up.url, REDIS_URL: redis.url, ...FAST });
      await redisAvailable([b]);
      const body = streamBody();
      const onA = rawStream(leader.url, body);
      await until(() => up.calls === 1, 5_000, 'A to call upstream');
      const claimKeys = await probe.keys('cgw:*:claim');
      assert.equal(claimKeys.length, 1);
      const claimKey = claimKeys[0] as string;
      const first = await probe.get(claimKey);
      const onB = rawStream(b.url, body);
      await eventually(async () => (await metric(b.url, 'remote_flight_followers')) === 1, 5_000, 'B to follow A');

      leader.pause();
      const stalledAt = performance.now();
      // A's claim expires; B's follower sees it go and leads in A's place (nothing was relayed yet).
      await until(() => up.calls === 2, FAULT_BOUND_MS, 'B to take over and call upstream');
      t.diagnostic(`B took over ${Math.round(performance.now() - stalledAt)} ms after A stalled`);
      const successor = await probe.get(claimKey);
      assert.ok(successor !== null && successor !== first, 'B holds a new claim');

      leader.resume();
      // A's next heartbeat finds its claim gone: it stops publishing and releases (compare-and-delete).
      await eventually(async () => (await metric(leader?.url ?? '', 'remote_flight_publishers')) === 0, 5_000, 'A to notice it lost its claim');
      assert.equal(await probe.get(claimKey), successor, 'the late instance did not delete its successor\'s claim');

      up.releaseHead();
      up.release();
      const [textA, textB] = await within(Promise.all([onA.done, onB.done]), FAULT_BOUND_MS, 'both answers');
      assert.equal(textA, up.expected, 'A\'s client got A\'s own call whole');
      assert.equal(textB, up.expected, 'B\'s client got B\'s call whole');
      // Two calls happened (the stall forced it); each instance billed its own, once.
      assert.equal(await metric(leader.url, 'claude_tokens_total', { type: 'output' }), up.outputTokens);
      assert.equal(await metric(b.url, 'claude_tokens_total', { type: 'output' }), up.outputTokens);
      assert.equal(await metric(b.url, 'remote_flights_total', { role: 'takeover' }), 1);
      await gaugesReturnToZero([leader.url, b.url]);
    } finally {
      up.releaseHead();
      up.release();
      leader?.kill();
      probe.destroy();
      await b.shutdown();
      await up.close();
    }
  });

  test('Redis stopped (SIGSTOP) mid-publish: the leader\'s client gets the whole answer, the follower an explicit error in bounded time', async (t) => {
    await onPacedPair(redis, async ({ up, a, b }) => {
      try {
        const { onA, onB } = await leadAndFollow(up, a.url, b.url);
        redis.pause();
        const faultAt = performance.now();
        try {
          up.release();
          const textA = await within(onA.done, FAULT_BOUND_MS, 'A\'s answer');
          assert.equal(textA, up.expected);
          assertExplicitError(await within(onB.done, FAULT_BOUND_MS, 'B to fail'));
          t.diagnostic(`follower failed ${Math.round(performance.now() - faultAt)} ms after Redis stopped`);
        } finally {
          redis.resume();
        }
        assert.equal(up.calls, 1);
        assert.equal(await billedOutput([a.url, b.url]), up.outputTokens, 'billed once');
        assert.equal(await metric(b.url, 'claude_tokens_saved_total', { type: 'output' }), 0, 'an interrupted answer saves nothing');
        await gaugesReturnToZero([a.url, b.url]);
      } finally {
        redis.resume();
      }
    });
  });

  test('Redis killed and restarted mid-stream: explicit error for the follower, then shared mode comes back', async () => {
    await onPacedPair(redis, async ({ up, a, b }) => {
      const { onA, onB } = await leadAndFollow(up, a.url, b.url);
      await redis.stop();
      try {
        up.release();
        assert.equal(await within(onA.done, FAULT_BOUND_MS, 'A\'s answer'), up.expected);
        assertExplicitError(await within(onB.done, FAULT_BOUND_MS, 'B to fail'));
        // Meanwhile B answers on its own.
        const alone = rawStream(b.url, streamBody());
        assert.equal(await within(alone.done, FAULT_BOUND_MS, 'a local answer on B while Redis is down'), up.expected);
      } finally {
        await redis.start();
      }
      await redisAvailable([a, b]);
      up.rearm();
      const again = await leadAndFollow(up, a.url, b.url);
      up.release();
      assert.equal(await within(again.onB.done, FAULT_BOUND_MS, 'B following again'), up.expected);
      assert.equal(await within(again.onA.done, FAULT_BOUND_MS, 'A'), up.expected);
      await gaugesReturnToZero([a.url, b.url]);
    });
  });

  test('a partition between one instance and Redis (packets dropped, no RST) ends its followers within the deadline', async (t) => {
    await onPacedPair(
      redis,
      async ({ up, a, b, proxy }) => {
        const { onA, onB } = await leadAndFollow(up, a.url, b.url);
        proxy.blackhole();
        const faultAt = performance.now();
        up.release();
        assert.equal(await within(onA.done, FAULT_BOUND_MS, 'A\'s answer'), up.expected);
        assertExplicitError(await within(onB.done, FAULT_BOUND_MS, 'B\'s follower to end despite the silent partition'));
        t.diagnostic(`follower failed ${Math.round(performance.now() - faultAt)} ms after the partition`);
        // B keeps answering, on its own, while the partition lasts.
        const alone = rawStream(b.url, streamBody());
        assert.equal(await within(alone.done, FAULT_BOUND_MS, 'a local answer on B during the partition'), up.expected);
        proxy.heal();
        await redisAvailable([b]);
        assert.equal(await billedOutput([a.url]), up.outputTokens);
        await gaugesReturnToZero([a.url, b.url]);
      },
      { proxied: true },
    );
  });

  test('failure domains: the shared cache\'s connection partitioned, coalescing across instances goes on', async () => {
    await onPacedPair(
      redis,
      async ({ up, a, b, proxy }) => {
        // Whatever connection of B carries a shared-cache command stops answering (no RST).
        proxy.blackholeWhen('cgw:cache:');
        const errorsBefore = await metric(b.url, 'redis_errors_total');
        const { onA, onB } = await leadAndFollow(up, a.url, b.url);
        assert.ok(proxy.selectedDrops >= 1, 'B\'s cache lookup went to the partitioned connection');
        up.release();
        assert.equal(await within(onA.done, FAULT_BOUND_MS, 'A\'s answer'), up.expected);
        assert.equal(await within(onB.done, FAULT_BOUND_MS, 'B\'s answer through Redis'), up.expected, 'B still followed A through Redis');
        assert.ok((await metric(b.url, 'redis_errors_total')) > errorsBefore, 'the cache lookup timed out');
        assert.equal(await metric(b.url, 'redis_available'), 1, 'coalescing stayed shared');
        assert.equal(await billedOutput([a.url, b.url]), up.outputTokens);
        await gaugesReturnToZero([a.url, b.url]);
      },
      { env: { CACHE: 'on' }, proxied: true },
    );
  });

  test('a 6 MiB answer: the remote follower gets every byte; past the cap new instances call upstream themselves', async () => {
    const bodyBytes = 6 * 1024 * 1024;
    const up = await pacedUpstream({ bodyBytes, split: 80 }); // 80 deltas of 64 KiB = 5 MiB before the split
    // Three instances and 6 MiB in one test process: claims and deadlines sized for its event loop.
    const roomy = { REDIS_CLAIM_TTL_MS: '3000', REDIS_COMMAND_TIMEOUT_MS: '1000' };
    const a = await gateway(up.url, redis.url, roomy);
    const b = await gateway(up.url, redis.url, roomy);
    const c = await gateway(up.url, redis.url, roomy);
    try {
      await redisAvailable([a, b, c]);
      const body = streamBody();
      const { onA, onB } = await leadAndFollow(up, a.url, b.url, body);
      up.release();
      await within(onB.received(5 * 1024 * 1024), 10_000, 'B to receive 5 MiB');
      // The answer is past the joiners' cap (COALESCE_MAX_REPLAY_BYTES, 4 MiB): C does not follow.
      const onC = rawStream(c.url, body);
      await until(() => up.calls === 2, 5_000, 'C to call upstream itself');
      up.releaseEnd();
      const texts = await within(Promise.all([onA.done, onB.done, onC.done]), 20_000, 'the three answers');
      for (const t of texts) assert.ok(t === up.expected, `a client got ${t.length} bytes instead of the ${up.expected.length} of the answer`);
      assert.equal(await metric(b.url, 'claude_tokens_total', { type: 'output' }), 0, 'B billed nothing');
      assert.equal(await metric(c.url, 'claude_tokens_total', { type: 'output' }), up.outputTokens);
      await gaugesReturnToZero([a.url, b.url, c.url]);
    } finally {
      up.release();
      up.releaseEnd();
      await a.shutdown();
      await b.shutdown();
      await c.shutdown();
      await up.close();
    }
  });
});
