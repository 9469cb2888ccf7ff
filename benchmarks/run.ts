import autocannon from 'autocannon';
import { Pool } from 'undici';
import { cpus } from 'node:os';
import { fixedRate, percentile, streamTimings, type LatencyResult, type Request } from './load.js';
import { peakRssMiB, pidOf, startBareProxy, startGateway, startMock, startNginx, startRedisServer, type Running } from './processes.js';

/**
 * `npm run bench`: the gateway against the direct upstream and nginx, measured in the same run,
 * reported as differences and ratios (these machines are shared and noisy: absolute numbers drift,
 * same-run ratios hold). CPU 0 runs the proxy under test (gateway or nginx), CPU 1 the mock
 * upstream and the load generator. Traffic stays on 127.0.0.1; every phase is bounded in time.
 *
 *   npm run bench                 all phases (about 3 minutes)
 *   npm run bench -- --only=throughput,latency,idle,streams,rss,coalescing,cross
 *   npm run bench -- --soak=600   adds a soak of N seconds of mixed traffic (RSS sampled)
 */

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const only = args.get('only')?.split(',');
const phase = (name: string): boolean => only === undefined || only.includes(name);
const seconds = Number(args.get('seconds') ?? '8');

const HEADERS = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench-0000000000', 'anthropic-version': '2023-06-01' };
const plain = (i: number): Request => ({
  path: '/v1/messages',
  headers: HEADERS,
  body: JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 32, messages: [{ role: 'user', content: `benchmark request ${i}` }] }),
});
const stream = (i: number): Request => ({ ...plain(i), body: JSON.stringify({ model: 'claude-sonnet-5', max_tokens: 24, stream: true, messages: [{ role: 'user', content: `stream ${i}` }] }) });

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const report: Record<string, unknown> = { date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version };
const out = (line = ''): void => void process.stdout.write(line + '\n');

async function throughput(target: Running): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const r = await autocannon({ url: `${target.url}/v1/messages`, method: 'POST', headers: HEADERS, body: plain(0).body, connections: 64, duration: seconds });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

async function withTargets<T>(mock: Running, gatewayEnv: Record<string, string>, fn: (t: Running) => Promise<T>): Promise<Record<string, T>> {
  const results: Record<string, T> = {};
  results.direct = await fn(mock);
  const nginx = await startNginx('0', mock.url);
  if (nginx !== undefined) {
    results.nginx = await fn(nginx);
    await nginx.stop();
  }
  const gateway = await startGateway('0', mock.url, gatewayEnv);
  results.gateway = await fn(gateway);
  await gateway.stop();
  return results;
}

async function main(): Promise<void> {
  out(`# claude-gateway benchmark ${report.date as string}`);
  out(`machine: ${cpus().length} x ${String(report.cpu)}, node ${process.version}; proxy on CPU 0, upstream + load on CPU 1`);
  // COALESCE stays on (the default); every request is distinct, so each one leads its own flight.
  const gatewayEnv = { RATE_LIMIT_RPM: '0' };

  if (phase('throughput')) {
    const mock = await startMock('1');
    const r = await withTargets(mock, gatewayEnv, throughput);
    await mock.stop();
    report.throughput = r;
    out('\n## Maximum throughput (64 connections, POST /v1/messages, closed loop)');
    out('| target | req/s | p50 ms | p99 ms | errors |');
    out('|---|---|---|---|---|');
    for (const [name, v] of Object.entries(r)) out(`| ${name} | ${fmt(v.rps, 0)} | ${v.p50} | ${v.p99} | ${v.errors} |`);
    if (r.gateway && r.nginx) out(`gateway / nginx = ${fmt(r.gateway.rps / r.nginx.rps)}; gateway / direct = ${fmt(r.gateway.rps / (r.direct?.rps ?? NaN))}`);
  }

  if (phase('latency')) {
    report.latency = {};
    for (const rate of [500, 1000]) {
      const mock = await startMock('1');
      const r = await withTargets(mock, gatewayEnv, (t) => fixedRate(t.url, rate, seconds, plain));
      await mock.stop();
      (report.latency as Record<string, unknown>)[rate] = r;
      out(`\n## Latency at ${rate} req/s (open loop, ${seconds} s, measured from the due time)`);
      out('| target | p50 ms | p90 ms | p99 ms | max ms | errors | added p50 ms | added p99 ms |');
      out('|---|---|---|---|---|---|---|---|');
      const base = r.direct as LatencyResult;
      for (const [name, v] of Object.entries(r)) {
        out(`| ${name} | ${fmt(v.p50)} | ${fmt(v.p90)} | ${fmt(v.p99)} | ${fmt(v.max)} | ${v.errors} | ${fmt(v.p50 - base.p50)} | ${fmt(v.p99 - base.p99)} |`);
      }
    }
  }

  if (phase('streams')) {
    const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: '5' });
    const r = await withTargets(mock, gatewayEnv, (t) => streamTimings(t.url, 200, stream));
    await mock.stop();
    report.streams = r;
    out('\n## Streams (sequential, ~30 events 5 ms apart)');
    out('| target | TTFB p50 ms | TTFB p99 ms | total p50 ms | added TTFB p50 ms | added per event (ms) |');
    out('|---|---|---|---|---|---|');
    const base = r.direct;
    for (const [name, v] of Object.entries(r)) {
      const addedTtfb = v.ttfb.p50 - (base?.ttfb.p50 ?? NaN);
      const addedTotal = v.total.p50 - (base?.total.p50 ?? NaN);
      out(`| ${name} | ${fmt(v.ttfb.p50)} | ${fmt(v.ttfb.p99)} | ${fmt(v.total.p50)} | ${fmt(addedTtfb)} | ${fmt((addedTotal - addedTtfb) / 30, 3)} |`);
    }
  }

  if (phase('idle')) {
    // One request at a time on one connection: the cost of the hop itself, with nothing queued.
    const mock = await startMock('1');
    const results: Record<string, number> = {};
    const measure = async (name: string, url: string): Promise<void> => {
      await streamTimings(url, 100, plain);
      results[name] = (await streamTimings(url, 300, plain)).total.p50;
    };
    await measure('direct', mock.url);
    const nginx = await startNginx('0', mock.url);
    if (nginx !== undefined) {
      await measure('nginx', nginx.url);
      await nginx.stop();
    }
    const bare = await startBareProxy('0', mock.url);
    await measure('bare node:http + undici', bare.url);
    await bare.stop();
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    await measure('gateway', gateway.url);
    await gateway.stop();
    await mock.stop();
    report.idle = results;
    out('\n## Latency of one request at a time (sequential, one connection, 300 requests, p50)');
    out('| target | p50 ms | added p50 ms |');
    out('|---|---|---|');
    for (const [name, v] of Object.entries(results)) out(`| ${name} | ${fmt(v)} | ${fmt(v - (results.direct ?? NaN))} |`);
  }

  if (phase('rss')) {
    // 1,000 concurrent streams, each ~30 events 100 ms apart (about 3 s): all open at once.
    const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: '100' });
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    const idle = peakRssMiB(pidOf(gateway));
    const pool = new Pool(gateway.url, { connections: 1000 });
    let completed = 0;
    await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const r = stream(i);
        const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
        let text = '';
        for await (const chunk of res.body) text += (chunk as Buffer).toString();
        if (text.includes('message_stop')) completed++;
      }),
    );
    const peak = peakRssMiB(pidOf(gateway));
    await pool.close();
    await gateway.stop();
    await mock.stop();
    report.rss = { idleMiB: idle, peakMiB: peak, streams: 1000, completed };
    out('\n## Memory at 1,000 concurrent streams');
    out(`gateway peak RSS ${fmt(peak ?? NaN, 1)} MiB (after start ${fmt(idle ?? NaN, 1)} MiB); ${completed}/1000 streams complete`);
  }

  if (phase('coalescing')) {
    // Bursts of duplicates: 20 distinct prompts x 25 copies. The upstream answers after 1 s, so a
    // whole burst arrives while its flights are open: upstream calls must equal distinct prompts.
    const mock = await startMock('1', { MOCK_LATENCY_MS: '1000' });
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    const pool = new Pool(gateway.url, { connections: 600 });
    const bursts = 5;
    const latencies: Record<string, number[]> = { leader: [], follower: [] };
    for (let b = 0; b < bursts; b++) {
      await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const r = plain(b * 1000 + (i % 20));
          const t0 = performance.now();
          const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
          await res.body.dump();
          const role = String(res.headers['x-gateway-coalesce-role']);
          latencies[role]?.push(performance.now() - t0);
        }),
      );
    }
    const stats = (await (await fetch(`${mock.url}/_mock/stats`)).json()) as { requests: number };
    await pool.close();
    await gateway.stop();
    await mock.stop();
    const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
    const leaders = sorted(latencies.leader ?? []);
    const followers = sorted(latencies.follower ?? []);
    report.coalescing = { requests: bursts * 500, distinct: bursts * 20, upstreamCalls: stats.requests, leaderP50: percentile(leaders, 50), followerP50: percentile(followers, 50), leaderP99: percentile(leaders, 99), followerP99: percentile(followers, 99) };
    out('\n## Coalescing (5 bursts of 500 requests = 20 distinct prompts x 25, upstream latency 1000 ms)');
    out(`requests ${bursts * 500}, distinct fingerprints ${bursts * 20}, upstream calls ${stats.requests} (saved ${fmt((1 - stats.requests / (bursts * 500)) * 100, 1)}%)`);
    out(`latency p50 leader ${fmt(percentile(leaders, 50))} ms, follower ${fmt(percentile(followers, 50))} ms; p99 leader ${fmt(percentile(leaders, 99))} ms, follower ${fmt(percentile(followers, 99))} ms (upstream itself: 1000 ms)`);
  }

  if (phase('cross')) {
    // Two instances on one redis-server: each burst of 20 distinct prompts x 10 copies is split
    // evenly across both. Upstream answers after 1 s, so every copy arrives while its flight is open.
    const redis = await startRedisServer();
    if (redis === undefined) out('\n## Cross-instance coalescing: skipped (redis-server not installed)');
    else {
      const mock = await startMock('1', { MOCK_LATENCY_MS: '1000' });
      const env = { ...gatewayEnv, REDIS_URL: redis.url };
      const a = await startGateway('0', mock.url, env);
      const b = await startGateway('0', mock.url, env);
      await new Promise((r) => setTimeout(r, 500)); // both connect to Redis
      const pools = [new Pool(a.url, { connections: 200 }), new Pool(b.url, { connections: 200 })];
      const byRole: Record<string, number[]> = {};
      const finishedAt: Record<string, Record<string, number[]>> = {};
      const bursts = 5;
      for (let burst = 0; burst < bursts; burst++) {
        // A first: its 100 requests lead the 20 flights; B's 100 then follow through Redis.
        const run = (pool: Pool, offset: number): Promise<void>[] =>
          Array.from({ length: 100 }, async (_, i) => {
            const r = plain(50_000 + burst * 100 + ((i + offset) % 20));
            const t0 = performance.now();
            const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
            await res.body.dump();
            const key = `${pool === pools[0] ? 'A' : 'B'} ${String(res.headers['x-gateway-coalesce-role'])}`;
            (byRole[key] ??= []).push(performance.now() - t0);
            // When each answer was complete, per flight: a remote follower against the local followers.
            ((finishedAt[r.body] ??= {})[key] ??= []).push(performance.now());
          });
        const first = run(pools[0] as Pool, 0);
        await new Promise((r) => setTimeout(r, 200));
        await Promise.all([...first, ...run(pools[1] as Pool, 7)]);
      }
      const stats = (await (await fetch(`${mock.url}/_mock/stats`)).json()) as { requests: number };
      for (const p of pools) await p.close();
      await a.stop();
      await b.stop();
      await mock.stop();
      await redis.stop();
      const p50 = (xs: number[] | undefined): string => fmt(percentile([...(xs ?? [])].sort((x, y) => x - y), 50));
      report.cross = { requests: bursts * 200, distinct: bursts * 20, upstreamCalls: stats.requests, roles: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, v.length])) };
      out('\n## Cross-instance coalescing (2 instances, 1 redis-server; 5 bursts of 20 prompts x 10 copies per instance; upstream 1000 ms)');
      out(`requests ${bursts * 200}, distinct fingerprints ${bursts * 20}, upstream calls ${stats.requests} (saved ${fmt((1 - stats.requests / (bursts * 200)) * 100, 1)}%)`);
      out(`p50 latency: A leader ${p50(byRole['A leader'])} ms, A follower ${p50(byRole['A follower'])} ms, B leader (remote follower) ${p50(byRole['B leader'])} ms, B follower ${p50(byRole['B follower'])} ms`);
      // Same run, same flights: how much later a follower through Redis (B's first request of a flight)
      // has its whole answer than the local followers on the leading instance (median of A's followers).
      const delays: number[] = [];
      for (const ends of Object.values(finishedAt)) {
        const local = [...(ends['A follower'] ?? [])].sort((x, y) => x - y);
        for (const remote of ends['B leader'] ?? []) if (local.length > 0) delays.push(remote - percentile(local, 50));
      }
      delays.sort((x, y) => x - y);
      (report.cross as Record<string, unknown>).remoteFollowerAddedMs = { p50: percentile(delays, 50), p99: percentile(delays, 99), flights: delays.length };
      out(`cross-instance follower completes after the leading instance's local followers by ${fmt(percentile(delays, 50))} ms at p50, ${fmt(percentile(delays, 99))} ms at p99 (${delays.length} flights)`);
    }
  }

  const soakSeconds = Number(args.get('soak') ?? '0');
  if (soakSeconds > 0) {
    const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: '2' });
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    const samples: number[] = [];
    const pid = pidOf(gateway);
    const rssNow = (): number => peakRssMiB(pid, 'VmRSS') ?? NaN;
    const end = Date.now() + soakSeconds * 1000;
    let i = 0;
    const pool = new Pool(gateway.url, { connections: 32 });
    const sampler = setInterval(() => samples.push(rssNow()), 30_000);
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (Date.now() < end) {
          const n = i++;
          const r = n % 3 === 0 ? stream(n) : plain(n % 50);
          const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
          await res.body.dump();
        }
      }),
    );
    clearInterval(sampler);
    await pool.close();
    await gateway.stop();
    await mock.stop();
    report.soak = { seconds: soakSeconds, requests: i, peakRssSamplesMiB: samples };
    out(`\n## Soak (${soakSeconds} s mixed traffic, 32 connections): ${i} requests; RSS every 30 s (MiB): ${samples.map((s) => fmt(s, 1)).join(', ')}`);
  }

  out('\n```json');
  out(JSON.stringify(report));
  out('```');
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
