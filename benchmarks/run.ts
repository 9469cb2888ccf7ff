import autocannon from 'autocannon';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { bigBodyStall, longTextBody, manyKeysBody } from './big-body.js';
import { fixedRate, interleavedStreamTimings, pairedTtfbDifference, percentile, streamTimings, type LaneTiming, type LatencyResult, type Request } from './load.js';
import { coreTimes, describeMachine, pinSelf, processCpuSeconds, rssMiB, utilisation } from './machine.js';
import { freePort } from '../test/helpers/ports.js';
import { chunkFrame } from '../tools/mock-upstream/provider-framing.js';
import { EventStreamToSse } from '../src/upstream/kinds/bedrock-stream.js';
import { pidOf, startBareProxy, startGateway, startMock, startNginx, startRedisServer, type Running } from './processes.js';
import { HEADERS, STREAM_EVENTS, duplicate, liveStream, plain1k, plain1m, stream } from './workloads.js';
import { PROMPT_CACHE_WORKLOAD, promptCacheRun, type PromptCacheResult } from './prompt-cache.js';
import { cacheP99, DIRECT } from './cache-p99.js';

/**
 * `npm run bench`: the gateway beside nginx and a bare node:http + undici proxy, in the same run.
 * The headline is CPU microseconds per completed request of each proxy process (utime + stime from
 * /proc/<pid>/stat, children included for nginx's worker), which a busy shared machine distorts far
 * less than latency or throughput. The proxy under test runs alone on CPU 0 (taskset); the mock
 * upstream and this load generator share CPU 1. Every request body is distinct unless the workload
 * is about coalescing (it says so). Traffic stays on 127.0.0.1; every phase is bounded in count and time.
 *
 *   npm run bench                  all phases (about 10 minutes)
 *   npm run bench -- --only=cpu,cache-p99,cpu1m,throughput,idle,ttfb,live,coalescing,workers,cross,bigbody,failover,kinds,prompt-cache
 *   npm run bench -- --seconds=8   recorded seconds of the fixed-rate and throughput phases
 *   npm run bench -- --only=cache-p99 [--rounds=8] [--window=3] [--rate=1000] [--base=<another build's dist/src>] [--split]
 *                                  interleaved windows of the cache's latency phase, and a base build beside this one;
 *                                  --split: each proxy's own p99 and its upstream's, from a probe preloaded in every proxy
 *   npm run bench -- --only=ttfb [--base=<another build's dist/src>]   the first-byte phase with a base build's gateway beside this one's
 *   npm run bench -- --soak=600    adds a soak of N seconds of mixed traffic (RSS sampled)
 */

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const only = args.get('only')?.split(',');
const phase = (name: string): boolean => only === undefined || only.includes(name);
const seconds = Number(args.get('seconds') ?? '8');

const machine = describeMachine();
const pinned = pinSelf('1');
const report: Record<string, unknown> = { date: new Date().toISOString(), machine, loadGeneratorPinned: pinned, args: process.argv.slice(2) };
const out = (line = ''): void => void process.stdout.write(line + '\n');
const fmt = (n: number | undefined, digits = 2): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const pct = (x: number | undefined): string => (x === undefined ? 'n/a' : `${Math.round(x * 100)}%`);
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 ? `${fmt(a / b)}x` : 'n/a');
const machineLine = (): string => `machine: ${machine.cores} x ${machine.cpuModel}, Linux ${machine.kernel}, node ${machine.node}, nginx ${machine.nginx ?? 'not installed'}`;

interface MockStats {
  requests: number;
  connections: number;
  http2Connections: number;
  openStreams: number;
  peakOpenStreams: number;
  activeRequests: number;
  peakActiveRequests: number;
}
async function mockStats(mock: Running): Promise<MockStats> {
  return (await (await fetch(`${mock.url}/_mock/stats`)).json()) as MockStats;
}

type ProxyName = 'nginx' | 'bare node:http + undici' | 'gateway';

/** The bare proxy with the gateway's V8 settings (benchmarks/bare-proxy.ts, BARE_GATEWAY_V8): the first-byte phase's extra target. */
const BARE_GATEWAY_V8 = "bare node:http + undici, the gateway's V8 settings";

/** The proxies every comparison runs, each on CPU 0 in front of `mock` (nginx is undefined when not installed). */
function proxyStarters(mock: Running, gatewayEnv: Record<string, string>): [ProxyName, () => Promise<Running | undefined>][] {
  return [
    ['nginx', () => startNginx('0', mock.url)],
    ['bare node:http + undici', () => startBareProxy('0', mock.url)],
    ['gateway', () => startGateway('0', mock.url, gatewayEnv)],
  ];
}

/**
 * Starts each proxy in turn on CPU 0 in front of `mock` and runs `fn` against it; `direct` (no
 * proxy) first when asked, as the latency baseline. nginx is skipped, and said so, when not installed.
 */
async function eachTarget<T>(
  mock: Running,
  gatewayEnv: Record<string, string>,
  fn: (t: Running, pid: number | undefined) => Promise<T>,
  options: { direct?: boolean } = {},
): Promise<Record<string, T>> {
  const results: Record<string, T> = {};
  if (options.direct !== false) results.direct = await fn(mock, undefined);
  for (const [name, start] of proxyStarters(mock, gatewayEnv)) {
    const proxy = await start();
    if (proxy === undefined) {
      out(`(${name} skipped: not installed; on Debian \`apt-get install nginx\`)`);
      continue;
    }
    try {
      results[name] = await fn(proxy, pidOf(proxy));
    } finally {
      await proxy.stop();
    }
  }
  return results;
}

interface CpuResult extends LatencyResult {
  completed: number;
  upstreamCalls: number;
  /** CPU microseconds of the proxy process per completed request (undefined for direct). */
  cpuUsPerRequest: number | undefined;
  /** Share of one core the proxy process used over the recorded phase. */
  proxyCoreShare: number | undefined;
  cores: number[];
}

/** Fixed-rate load with CPU accounting around exactly the recorded requests. */
async function cpuAtRate(mock: Running, target: Running, pid: number | undefined, rate: number, secs: number, make: (i: number) => Request, warmupSeconds: number): Promise<CpuResult> {
  let cpu0 = 0;
  let cores0 = coreTimes();
  let calls0 = 0;
  let t0 = 0;
  let cpu1 = 0;
  let cores1 = cores0;
  let t1 = 0;
  // Bodies are numbered per target so two targets never send the same body to the shared mock.
  const offset = Math.floor(Math.random() * 1e9);
  const result = await fixedRate(target.url, rate, secs, (i) => make(offset + i), {
    warmupSeconds,
    before: async () => {
      calls0 = (await mockStats(mock)).requests;
      cpu0 = pid === undefined ? 0 : processCpuSeconds(pid);
      cores0 = coreTimes();
      t0 = performance.now();
    },
    after: () => {
      cpu1 = pid === undefined ? 0 : processCpuSeconds(pid);
      cores1 = coreTimes();
      t1 = performance.now();
    },
  });
  const completed = result.sent - result.errors;
  const upstreamCalls = (await mockStats(mock)).requests - calls0;
  return {
    ...result,
    completed,
    upstreamCalls,
    cpuUsPerRequest: pid === undefined || completed === 0 ? undefined : ((cpu1 - cpu0) * 1e6) / completed,
    proxyCoreShare: pid === undefined ? undefined : (cpu1 - cpu0) / ((t1 - t0) / 1000),
    cores: utilisation(cores0, cores1),
  };
}

function cpuTable(title: string, r: Record<string, CpuResult>): void {
  out(`\n## ${title}`);
  out(machineLine());
  out('| target | completed | errors | upstream calls | proxy CPU µs/req | vs bare | vs nginx | proxy core share | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU0 busy | CPU1 busy |');
  out('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const bare = r['bare node:http + undici']?.cpuUsPerRequest;
  const nginx = r.nginx?.cpuUsPerRequest;
  const base = r.direct;
  for (const [name, v] of Object.entries(r)) {
    out(
      `| ${name} | ${v.completed} | ${v.errors} | ${v.upstreamCalls} | ${fmt(v.cpuUsPerRequest, 0)} | ${name === 'direct' ? '' : ratio(v.cpuUsPerRequest, bare)} | ${name === 'direct' ? '' : ratio(v.cpuUsPerRequest, nginx)} | ${pct(v.proxyCoreShare)} | ${fmt(v.p50)} | ${fmt(v.p99)} | ${name === 'direct' ? '' : fmt(v.p50 - (base?.p50 ?? NaN))} | ${name === 'direct' ? '' : fmt(v.p99 - (base?.p99 ?? NaN))} | ${pct(v.cores[0])} | ${pct(v.cores[1])} |`,
    );
  }
  out('upstream calls = recorded requests that reached the mock: equal to completed means nothing was coalesced.');
}

interface ThroughputResult {
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  errors: number;
  upstreamCalls: number;
  cpuUsPerRequest: number | undefined;
  proxyCoreShare: number | undefined;
  cores: number[];
}

async function throughput(mock: Running, target: Running, pid: number | undefined): Promise<ThroughputResult> {
  // setupRequest numbers every body (autocannon's idReplacement sent nothing at all here).
  let n = Math.floor(Math.random() * 1e9);
  const opts = {
    url: `${target.url}/v1/messages`,
    method: 'POST' as const,
    headers: HEADERS,
    connections: 64,
    requests: [{ setupRequest: (req: autocannon.Request): autocannon.Request => ({ ...req, body: plain1k(n++).body }) }],
  };
  await autocannon({ ...opts, duration: 2 }); // warm-up, unrecorded
  const calls0 = (await mockStats(mock)).requests;
  const cpu0 = pid === undefined ? 0 : processCpuSeconds(pid);
  const cores0 = coreTimes();
  const t0 = performance.now();
  const r = await autocannon({ ...opts, duration: seconds });
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = pid === undefined ? 0 : processCpuSeconds(pid);
  const cores = utilisation(cores0, coreTimes());
  const upstreamCalls = (await mockStats(mock)).requests - calls0;
  const completed = r.requests.total - r.non2xx;
  return {
    rps: r.requests.average,
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    upstreamCalls,
    cpuUsPerRequest: pid === undefined || completed === 0 ? undefined : ((cpu1 - cpu0) * 1e6) / completed,
    proxyCoreShare: pid === undefined ? undefined : (cpu1 - cpu0) / wall,
    cores,
  };
}

/** The saturated core, if any: the proxy's (CPU 0) or the mock and load generator's (CPU 1). */
function bottleneck(cores: number[]): string {
  const [c0 = 0, c1 = 0] = cores;
  const names = [c0 >= 0.9 ? 'CPU 0 (proxy)' : undefined, c1 >= 0.9 ? 'CPU 1 (mock + load generator)' : undefined].filter((x) => x !== undefined);
  if (names.length > 0) return names.join(' and ');
  return `neither core saturated (busiest: ${c0 >= c1 ? 'CPU 0' : 'CPU 1'})`;
}

interface LiveResult {
  /** Streams live at the mock when the readings were taken (the first poll at or past each milestone). */
  liveAtReading: Record<number, number>;
  rssAtMiB: Record<number, number>;
  secondsTo: Record<number, number>;
  maxLiveSeen: number;
  started: number;
  completed: number;
  /** Streams that did not complete, by error code or status. */
  failures: Record<string, number>;
  upstreamConnections: number;
  upstreamHttp2Connections: number;
  rssIdleMiB: number;
  peakRssMiB: number;
  cpuUsPerStream: number;
}

/** Rounds of the first-byte phase: one stream per target per round. */
const TTFB_ROUNDS = 200;

/** Live streams arrive at this rate (5,000 take 25 s to arrive: node:http's listen backlog is 511). */
const LIVE_ARRIVALS_PER_S = 200;
/** Gap between the mock's SSE events there: 7 events (one text delta) make a 36 s stream, longer than the ramp. */
const LIVE_EVENT_INTERVAL_MS = 6000;
const LIVE_EVENTS = 7;
const LIVE_MILESTONES = [1000, 5000] as const;

/**
 * 5,000 streams with distinct prompts arrive at LIVE_ARRIVALS_PER_S, each lasting ~36 s, so they pile
 * up: RSS is read when 1,000 and when 5,000 are live AT ONCE, counted at the upstream (the mock's open
 * SSE answers), never assumed from the client side.
 */
async function liveStreams(target: Running, pid: number, mock: Running): Promise<LiveResult> {
  const n = LIVE_MILESTONES[LIVE_MILESTONES.length - 1] as number;
  const rssIdleMiB = rssMiB(pid, 'VmRSS');
  const cpu0 = processCpuSeconds(pid);
  const pool = new Pool(target.url, { connections: n, connectTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const started = performance.now();
  let completed = 0;
  const failures: Record<string, number> = {};
  const fail = (kind: string): void => void (failures[kind] = (failures[kind] ?? 0) + 1);
  const offset = Math.floor(Math.random() * 1e9);
  const one = async (i: number): Promise<void> => {
    const r = liveStream(offset + i);
    try {
      const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
      let tail = '';
      for await (const chunk of res.body) tail = (tail + (chunk as Buffer).toString()).slice(-64);
      if (res.statusCode === 200 && tail.includes('message_stop')) completed++;
      else fail(res.statusCode === 200 ? 'incomplete stream' : `status ${res.statusCode}`);
    } catch (err) {
      fail((err as { code?: string }).code ?? (err instanceof Error ? err.name : 'error'));
    }
  };
  // Arrivals in batches of 20: thousands of connections at once would overflow listen backlogs, and SYN
  // retries (1 s, 3 s, 7 s) would stagger the streams instead.
  const streams: Promise<void>[] = [];
  const launching = (async () => {
    for (let i = 0; i < n; i += 20) {
      for (let j = i; j < Math.min(n, i + 20); j++) streams.push(one(j));
      await new Promise((r) => setTimeout(r, (20 * 1000) / LIVE_ARRIVALS_PER_S));
    }
  })();
  const result: LiveResult = {
    liveAtReading: {},
    rssAtMiB: {},
    secondsTo: {},
    maxLiveSeen: 0,
    started: n,
    completed: 0,
    failures,
    upstreamConnections: 0,
    upstreamHttp2Connections: 0,
    rssIdleMiB,
    peakRssMiB: 0,
    cpuUsPerStream: 0,
  };
  const deadline = started + (n / LIVE_ARRIVALS_PER_S) * 1000 + 20_000;
  const ramp = { done: false };
  void launching.then(() => (ramp.done = true));
  while (performance.now() < deadline) {
    const s = await mockStats(mock);
    result.maxLiveSeen = Math.max(result.maxLiveSeen, s.openStreams);
    for (const m of LIVE_MILESTONES) {
      if (result.liveAtReading[m] === undefined && s.openStreams >= m) {
        result.liveAtReading[m] = s.openStreams;
        result.rssAtMiB[m] = rssMiB(pid, 'VmRSS');
        result.secondsTo[m] = (performance.now() - started) / 1000;
      }
    }
    if (result.liveAtReading[n] !== undefined) break;
    if (ramp.done && s.openStreams < result.maxLiveSeen - 100) break; // past its crest: streams already ending
    await new Promise((r) => setTimeout(r, 100));
  }
  await launching;
  await Promise.all(streams);
  const stats = await mockStats(mock);
  await pool.close();
  return {
    ...result,
    maxLiveSeen: Math.max(result.maxLiveSeen, stats.peakOpenStreams),
    completed,
    upstreamConnections: stats.connections,
    upstreamHttp2Connections: stats.http2Connections,
    peakRssMiB: rssMiB(pid, 'VmHWM'),
    cpuUsPerStream: ((processCpuSeconds(pid) - cpu0) * 1e6) / n,
  };
}

async function main(): Promise<void> {
  out(`# claude-gateway benchmark ${report.date as string}`);
  out(machineLine());
  out(`proxy under test on CPU 0; mock upstream and load generator on CPU 1 (load generator pinned: ${pinned ? 'yes' : 'no, taskset missing'})`);
  // Gateway defaults: coalescing on, breaker on, LOG_LEVEL=info (one JSON line per request, to /dev/null).
  const gatewayEnv: Record<string, string> = {};

  if (phase('cpu')) {
    const mock = await startMock('1');
    const rate = 1000;
    const warmup = 2;
    const r = await eachTarget(mock, gatewayEnv, (t, pid) => cpuAtRate(mock, t, pid, rate, seconds, plain1k, warmup));
    await mock.stop();
    report.cpu = r;
    cpuTable(`CPU per request: 1 KB bodies at ${rate} req/s (open loop, ${seconds} s recorded after ${warmup} s warm-up, every body distinct)`, r);
  }

  if (phase('cache-p99')) {
    // The response cache's latency cost: this build's gateway with CACHE off and on (and a base build's, with --base),
    // the bare proxy and direct, in interleaved windows (benchmarks/cache-p99.ts).
    const mock = await startMock('1');
    const rate = Number(args.get('rate') ?? '1000');
    const rounds = Number(args.get('rounds') ?? '8');
    const windowSeconds = Number(args.get('window') ?? '3');
    const base = args.get('base');
    const split = args.has('split');
    let r;
    try {
      r = await cacheP99(mock, { rate, rounds, windowSeconds, base, split });
    } finally {
      await mock.stop();
    }
    report.cacheP99 = r;
    out(`\n## The response cache's latency: 1 KB at ${rate} req/s, open loop (latency from scheduled send), every body distinct; ${rounds} interleaved rounds of ${windowSeconds} s per target, medians of rounds`);
    out(machineLine());
    if (base !== undefined) out(`base build: ${base}`);
    const splitHead = split ? ' proxy\'s own request p99 ms | its upstream answer head p99 ms | own tail overlapping a pause, young / old | pause ms/s, young / old |' : '';
    out(`| target | errors | p50 ms | p99 ms | added p50 ms | added p99 ms | p99 over bare, paired ms |${splitHead} collector pause µs/req, young / old | added p99 per round ms |`);
    out(`|---|---|---|---|---|---|---|${split ? '---|---|---|---|' : ''}---|---|`);
    const direct = r.find((t) => t.name === DIRECT);
    for (const t of r) {
      const perRound = t.name === DIRECT ? '' : t.windows.map((w, i) => fmt(w.p99 - (direct?.windows[i]?.p99 ?? NaN), 1)).join(', ');
      const gc = t.gcYoungUsPerRequest === undefined ? '' : `${fmt(t.gcYoungUsPerRequest, 1)} / ${fmt(t.gcOldUsPerRequest, 1)}`;
      const sp = t.split;
      const pct = (share: number): string => `${Math.round(share * 100)} %`;
      const splitCells = !split ? '' : sp === undefined ? ' | | | |' : ` ${fmt(sp.requestP99)} | ${fmt(sp.upstreamHeadP99)} | ${pct(sp.tailInYoungPause)} / ${pct(sp.tailInOldPause)} | ${fmt(sp.youngPauseMsPerSecond, 1)} / ${fmt(sp.oldPauseMsPerSecond, 1)} |`;
      out(`| ${t.name} | ${t.errors} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${t.name === DIRECT ? '' : fmt(t.addedP50)} | ${t.name === DIRECT ? '' : fmt(t.addedP99)} | ${t.overBareP99 === undefined ? '' : fmt(t.overBareP99)} |${splitCells} ${gc} | ${perRound} |`);
    }
    out('added = the target\'s percentile minus direct\'s in the same round; the median of those differences over the rounds. p99 over bare = the same against the bare proxy\'s window of the round.');
    if (split) {
      out('split (--split, benchmarks/latency-probe.ts in every proxy): the proxy\'s own time from reading a request\'s head to finishing its answer, and its upstream calls\' time from writing the head to reading the answer\'s head; medians over rounds of each window\'s p99.');
      out('own tail overlapping a pause: of the requests at or above the proxy\'s own p99, the share whose own time overlapped a collector pause (perf_hooks gc entries; a lower bound: a request delayed before its head was read is not counted); pause ms/s: collector pause per second of window.');
    }
    out('collector pause = the gateway\'s own nodejs_gc_duration_seconds over its windows (scavenges; mark-compact and incremental marking), per completed request.');
  }

  if (phase('cpu1m')) {
    const mock = await startMock('1');
    const rate = 40;
    const warmup = 2;
    const r = await eachTarget(mock, gatewayEnv, (t, pid) => cpuAtRate(mock, t, pid, rate, Math.min(seconds, 6), plain1m, warmup));
    await mock.stop();
    report.cpu1m = r;
    cpuTable(`CPU per request: 1 MB bodies at ${rate} req/s (open loop, ${Math.min(seconds, 6)} s recorded after ${warmup} s warm-up, every body distinct)`, r);
  }

  if (phase('throughput')) {
    const mock = await startMock('1');
    const r = await eachTarget(mock, gatewayEnv, (t, pid) => throughput(mock, t, pid));
    await mock.stop();
    report.throughput = r;
    out(`\n## Maximum throughput (closed loop, 64 connections, ${seconds} s after a 2 s warm-up, 1 KB bodies, every body distinct)`);
    out(machineLine());
    out('| target | req/s | p50 ms | p99 ms | errors | upstream calls / requests | proxy CPU µs/req | proxy core share | CPU0 busy | CPU1 busy | bottleneck |');
    out('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, v] of Object.entries(r)) {
      out(`| ${name} | ${fmt(v.rps, 0)} | ${v.p50} | ${v.p99} | ${v.errors} | ${v.upstreamCalls} / ${v.requests} | ${fmt(v.cpuUsPerRequest, 0)} | ${pct(v.proxyCoreShare)} | ${pct(v.cores[0])} | ${pct(v.cores[1])} | ${bottleneck(v.cores)} |`);
    }
    out('CPU busy counts every process on the core (this machine is shared); proxy core share is the proxy process alone.');
  }

  if (phase('idle')) {
    // One request at a time on one connection: the cost of the hop itself, with nothing queued.
    const mock = await startMock('1');
    let n = 0;
    const r = await eachTarget(mock, gatewayEnv, async (t) => {
      const base = (n += 100_000);
      await streamTimings(t.url, 100, (i) => plain1k(base + i));
      return (await streamTimings(t.url, 300, (i) => plain1k(base + 50_000 + i))).total.p50;
    });
    await mock.stop();
    report.idle = r;
    out('\n## Latency of one request at a time (sequential, one connection, 300 requests after 100 unrecorded, 1 KB, p50)');
    out(machineLine());
    out('| target | p50 ms | added p50 ms |');
    out('|---|---|---|');
    for (const [name, v] of Object.entries(r)) out(`| ${name} | ${fmt(v)} | ${name === 'direct' ? '' : fmt(v - (r.direct ?? NaN))} |`);
  }

  if (phase('ttfb')) {
    // Every target runs at once and takes one stream in turn (rotating order): the same machine
    // conditions for each, request by request.
    const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: '5' });
    const running: Running[] = [];
    const targets: { name: string; url: string }[] = [{ name: 'direct', url: mock.url }];
    let r: Record<string, LaneTiming>;
    try {
      const ttfbBase = args.get('base');
      const starters: [string, () => Promise<Running | undefined>][] = [
        ...proxyStarters(mock, gatewayEnv),
        ...(ttfbBase === undefined ? [] : [['gateway base', () => startGateway('0', mock.url, gatewayEnv, [], ttfbBase)] as [string, () => Promise<Running>]]),
        [BARE_GATEWAY_V8, () => startBareProxy('0', mock.url, [], { BARE_GATEWAY_V8: '1' })],
      ];
      for (const [name, start] of starters) {
        const proxy = await start();
        if (proxy === undefined) out(`(${name} skipped: not installed; on Debian \`apt-get install nginx\`)`);
        else {
          running.push(proxy);
          targets.push({ name, url: proxy.url });
        }
      }
      r = await interleavedStreamTimings(targets, TTFB_ROUNDS, (i) => stream(100_000 + i));
    } finally {
      for (const proxy of running) await proxy.stop();
      await mock.stop();
    }
    report.ttfb = Object.fromEntries(Object.entries(r).map(([name, v]) => [name, { ttfb: v.ttfb, total: v.total }]));
    out(`\n## Streams one at a time (${STREAM_EVENTS} events 5 ms apart; every target alive, one stream each in rotating order, ${TTFB_ROUNDS} rounds after 300 warm-up streams and 20 unrecorded rounds)`);
    out(machineLine());
    if (args.get('base') !== undefined) out(`base build: ${args.get('base')}`);
    out('| target | TTFB p50 ms | TTFB p99 ms | total p50 ms | added TTFB p50 ms | added per event ms | TTFB over bare, paired ms |');
    out('|---|---|---|---|---|---|---|');
    const base = r.direct;
    const bare = r['bare node:http + undici'];
    for (const [name, v] of Object.entries(r)) {
      const addedTtfb = v.ttfb.p50 - (base?.ttfb.p50 ?? NaN);
      const addedTotal = v.total.p50 - (base?.total.p50 ?? NaN);
      const overBare = name.startsWith('gateway') && bare !== undefined ? fmt(pairedTtfbDifference(v, bare), 3) : '';
      out(`| ${name} | ${fmt(v.ttfb.p50)} | ${fmt(v.ttfb.p99)} | ${fmt(v.total.p50)} | ${name === 'direct' ? '' : fmt(addedTtfb)} | ${name === 'direct' ? '' : fmt((addedTotal - addedTtfb) / STREAM_EVENTS, 3)} | ${overBare} |`);
    }
    out('TTFB over bare, paired: the median over rounds of the gateway\'s first-byte time minus the bare proxy\'s in the same round.');
    const gateway = r.gateway;
    const gatewayBase = r['gateway base'];
    if (gateway !== undefined && gatewayBase !== undefined) out(`This build's gateway minus the base build's, paired: ${fmt(pairedTtfbDifference(gateway, gatewayBase), 3)} ms.`);
    // The gateway's V8 tuning (src/v8-heap.ts) is open to any node proxy: this difference is its own work alone.
    const bareTuned = r[BARE_GATEWAY_V8];
    if (gateway !== undefined && bareTuned !== undefined) out(`The gateway minus the bare proxy run with the gateway's V8 settings, paired: ${fmt(pairedTtfbDifference(gateway, bareTuned), 3)} ms.`);
  }

  if (phase('live')) {
    const results: Record<string, LiveResult> = {};
    const variants: [string, (mockUrl: string) => Promise<Running | undefined>, boolean][] = [
      ['gateway (defaults: HTTP/1.1 upstream)', (u) => startGateway('0', u, gatewayEnv), false],
      ['gateway (UPSTREAM_HTTP2=on: h2c upstream)', (u) => startGateway('0', u, { ...gatewayEnv, UPSTREAM_HTTP2: 'on' }), true],
      ['nginx', (u) => startNginx('0', u), false],
      ['bare node:http + undici', (u) => startBareProxy('0', u), false],
    ];
    for (const [name, start, h2] of variants) {
      const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: String(LIVE_EVENT_INTERVAL_MS), ...(h2 ? { MOCK_HTTP2: 'on' } : {}) });
      const proxy = await start(mock.url);
      if (proxy === undefined) out(`(${name} skipped: not installed)`);
      else {
        results[name] = await liveStreams(proxy, pidOf(proxy), mock);
        await proxy.stop();
      }
      await mock.stop();
    }
    report.live = results;
    const [m1, m2] = LIVE_MILESTONES;
    out(
      `\n## Live streams: 5,000 streams arriving at ${LIVE_ARRIVALS_PER_S}/s, each ${LIVE_EVENTS} events ${LIVE_EVENT_INTERVAL_MS / 1000} s apart (${Math.round(((LIVE_EVENTS - 1) * LIVE_EVENT_INTERVAL_MS) / 1000)} s), distinct prompts`,
    );
    out(machineLine());
    out('"live" = SSE answers open at the mock at the same moment (the mock counts them). RSS is read when the mock first counts 1,000 and 5,000 live.');
    out(`| target | most live at once | RSS idle MiB | RSS at ${m1} live MiB | RSS at ${m2} live MiB | per additional live stream KiB | peak RSS MiB | s to ${m2} live | completed | upstream connections (h2) | CPU µs/stream |`);
    out('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, v] of Object.entries(results)) {
      const a = v.rssAtMiB[m1];
      const b = v.rssAtMiB[m2];
      const la = v.liveAtReading[m1];
      const lb = v.liveAtReading[m2];
      const perStream = a !== undefined && b !== undefined && la !== undefined && lb !== undefined && lb > la ? ((b - a) * 1024) / (lb - la) : undefined;
      out(
        `| ${name} | ${v.maxLiveSeen} of ${v.started} | ${fmt(v.rssIdleMiB, 1)} | ${fmt(a, 1)} | ${b === undefined ? 'never all live' : fmt(b, 1)} | ${fmt(perStream, 1)} | ${fmt(v.peakRssMiB, 1)} | ${fmt(v.secondsTo[m2], 1)} | ${v.completed}${Object.keys(v.failures).length > 0 ? ` (failed: ${Object.entries(v.failures).map(([k, c]) => `${k} ${c}`).join(', ')})` : ''} | ${v.upstreamConnections} (${v.upstreamHttp2Connections}) | ${fmt(v.cpuUsPerStream, 0)} |`,
      );
    }
  }

  if (phase('coalescing')) {
    // COALESCING WORKLOAD, duplicates on purpose: bursts of 2,500 requests over 100 distinct prompts
    // (25 copies each) fired at once, upstream answering after 500 ms (issue 14 item 4's scenario).
    // The first burst opens 2,500 new connections to a cold process; the second reuses them, warm.
    // Run with the defaults, with the window but no catch-up, and without the window, in the same run.
    const variants: [string, Record<string, string>][] = [
      ['defaults (COALESCE_LINGER_MS=100, COALESCE_LINGER_CATCHUP_MS=2000)', {}],
      ['COALESCE_LINGER_CATCHUP_MS=0 (the window alone)', { COALESCE_LINGER_CATCHUP_MS: '0' }],
      ['COALESCE_LINGER_MS=0', { COALESCE_LINGER_MS: '0' }],
    ];
    {
      // The load generator warms up first (one unrecorded burst straight at a mock): otherwise the first
      // variant's fresh-process burst would also be the generator's cold one, and arrive more spread out.
      const mock = await startMock('1', { MOCK_LATENCY_MS: '500' });
      const pool = new Pool(mock.url, { connections: 2600 });
      await Promise.all(
        Array.from({ length: 2500 }, async (_, i) => {
          const r = duplicate(-1, i, 100);
          const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
          await res.body.dump();
        }),
      );
      await pool.close();
      await mock.stop();
    }
    const results: Record<string, { upstreamCallsPerBurst: number[]; burstSeconds: number[]; gatewayCpuSeconds: number[]; leaderP50: number | undefined; followerP50: number | undefined }> = {};
    for (const [name, env] of variants) {
      const mock = await startMock('1', { MOCK_LATENCY_MS: '500' });
      const gateway = await startGateway('0', mock.url, { ...gatewayEnv, ...env });
      const pid = pidOf(gateway);
      let pool = new Pool(gateway.url, { connections: 2600 });
      // Burst 0: a fresh process, 2,500 new connections. Burst 1: warm, the same connections again.
      // Burst 2: warm, 2,500 new connections (a new pool).
      const bursts = 3;
      const perBurst: number[] = [];
      const burstSeconds: number[] = [];
      const gatewayCpuSeconds: number[] = [];
      const latencies: Record<string, number[]> = { leader: [], follower: [] };
      for (let b = 0; b < bursts; b++) {
        if (b === 2) {
          await pool.close();
          pool = new Pool(gateway.url, { connections: 2600 });
        }
        const before = (await mockStats(mock)).requests;
        const cpu0 = processCpuSeconds(pid);
        const started = performance.now();
        await Promise.all(
          Array.from({ length: 2500 }, async (_, i) => {
            const r = duplicate(b, i, 100);
            const t0 = performance.now();
            const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
            await res.body.dump();
            latencies[String(res.headers['x-gateway-coalesce-role'])]?.push(performance.now() - t0);
          }),
        );
        burstSeconds.push((performance.now() - started) / 1000);
        gatewayCpuSeconds.push(processCpuSeconds(pid) - cpu0);
        perBurst.push((await mockStats(mock)).requests - before);
      }
      await pool.close();
      await gateway.stop();
      await mock.stop();
      const sorted = (xs: number[] | undefined): number[] => [...(xs ?? [])].sort((a, b) => a - b);
      results[name] = { upstreamCallsPerBurst: perBurst, burstSeconds, gatewayCpuSeconds, leaderP50: percentile(sorted(latencies.leader), 50), followerP50: percentile(sorted(latencies.follower), 50) };
    }
    report.coalescing = results;
    out('\n## Coalescing workload (duplicates on purpose): bursts of 2,500 requests = 100 distinct prompts x 25, fired at once, upstream 500 ms');
    out(machineLine());
    out('Bursts: 1 = fresh process, new connections; 2 = warm process, same connections; 3 = warm process, new connections.');
    out('| gateway | upstream calls per burst (1, 2, 3) | burst s (1, 2, 3) | gateway CPU s (1, 2, 3) | p50 ms leader | p50 ms follower |');
    out('|---|---|---|---|---|---|');
    for (const [name, v] of Object.entries(results)) {
      out(`| ${name} | ${v.upstreamCallsPerBurst.join(', ')} | ${v.burstSeconds.map((x) => fmt(x)).join(', ')} | ${v.gatewayCpuSeconds.map((x) => fmt(x)).join(', ')} | ${fmt(v.leaderP50)} | ${fmt(v.followerP50)} |`);
    }
    out('ideal: 100 upstream calls per burst (one per distinct prompt).');
  }

  if (phase('workers')) {
    // Scale-out on this machine: WORKERS=1 against WORKERS=2 (node:cluster, the supervisor passes each
    // accepted connection to a worker), closed loop, 1 KB distinct bodies. CPU per request counts the
    // supervisor and every worker. The mock and the load generator stay on CPU 1, so a second worker
    // allowed onto CPU 1 competes with them: on 2 cores there is no free core to scale onto.
    const variants: [string, Record<string, string>, string][] = [
      ['WORKERS=1, CPU 0', { WORKERS: '1' }, '0'],
      ['WORKERS=2, CPU 0 (both workers on one core)', { WORKERS: '2' }, '0'],
      ['WORKERS=2, CPUs 0-1 (second core shared with mock and load generator)', { WORKERS: '2' }, '0,1'],
    ];
    const r: Record<string, ThroughputResult> = {};
    for (const [name, env, cpus] of variants) {
      const mock = await startMock('1');
      const gateway = await startGateway(cpus, mock.url, { ...gatewayEnv, ...env });
      try {
        r[name] = await throughput(mock, gateway, pidOf(gateway));
      } finally {
        await gateway.stop();
        await mock.stop();
      }
    }
    report.workers = r;
    out(`\n## Scale-out: WORKERS=1 against WORKERS=2 (closed loop, 64 connections, ${seconds} s after a 2 s warm-up, 1 KB bodies, every body distinct)`);
    out(machineLine());
    out('| gateway | req/s | p50 ms | p99 ms | errors | gateway CPU µs/req (supervisor + workers) | gateway cores used | CPU0 busy | CPU1 busy | bottleneck |');
    out('|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, v] of Object.entries(r)) {
      const [c0 = 0, c1 = 0] = v.cores;
      const neck = c0 >= 0.9 && c1 >= 0.9 ? 'both cores saturated' : bottleneck(v.cores);
      out(`| ${name} | ${fmt(v.rps, 0)} | ${v.p50} | ${v.p99} | ${v.errors} | ${fmt(v.cpuUsPerRequest, 0)} | ${fmt(v.proxyCoreShare)} | ${pct(c0)} | ${pct(c1)} | ${neck} |`);
    }
  }

  if (phase('cross')) {
    // COALESCING WORKLOAD across two instances on one redis-server: per burst 20 prompts x 5 copies on
    // A, then 200 ms later the same 20 prompts x 5 on B; upstream answers after 1 s.
    const redis = await startRedisServer();
    if (redis === undefined) out('\n## Cross-instance coalescing: skipped (redis-server not installed)');
    else {
      const mock = await startMock('1', { MOCK_LATENCY_MS: '1000' });
      const env = { ...gatewayEnv, REDIS_URL: redis.url, TENANT_HASH_KEY: 'benchmark-tenant-hash-key-0123456789abcdef' };
      const a = await startGateway('0', mock.url, env);
      const b = await startGateway('0', mock.url, env);
      await new Promise((r) => setTimeout(r, 500)); // both connect to Redis
      const pools = [new Pool(a.url, { connections: 200 }), new Pool(b.url, { connections: 200 })] as const;
      const byRole: Record<string, number[]> = {};
      const finishedAt: Record<string, Record<string, number[]>> = {};
      const bursts = 5;
      for (let burst = 0; burst < bursts; burst++) {
        const run = (pool: Pool, _name: string): Promise<void>[] =>
          Array.from({ length: 100 }, async (_, i) => {
            const r = duplicate(1_000 + burst, i, 20);
            const t0 = performance.now();
            const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
            await res.body.dump();
            const key = `${pool === pools[0] ? 'A' : 'B'} ${String(res.headers['x-gateway-coalesce-role'])}`;
            (byRole[key] ??= []).push(performance.now() - t0);
            // When each answer was complete, per flight: a remote follower against the local followers.
            ((finishedAt[r.body] ??= {})[key] ??= []).push(performance.now());
          });
        const first = run(pools[0], 'A');
        await new Promise((r) => setTimeout(r, 200));
        await Promise.all([...first, ...run(pools[1], 'B')]);
      }
      const stats = await mockStats(mock);
      for (const p of pools) await p.close();
      await a.stop();
      await b.stop();
      await mock.stop();
      await redis.stop();
      const p50 = (xs: number[] | undefined): string => fmt(percentile([...(xs ?? [])].sort((x, y) => x - y), 50));
      report.cross = { requests: bursts * 200, distinct: bursts * 20, upstreamCalls: stats.requests, roles: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, v.length])) };
      out('\n## Cross-instance coalescing workload (duplicates on purpose; 2 instances, 1 redis-server; 5 bursts of 20 prompts x 5 copies per instance; upstream 1000 ms)');
      out(machineLine());
      out(`requests ${bursts * 200}, distinct prompts ${bursts * 20}, upstream calls ${stats.requests}`);
      // Every copy on B follows: its first one through Redis (a remote follower answers `follower` too),
      // the others locally behind that one. A `B leader` would be an upstream call B made itself.
      out(`p50 latency: A leader ${p50(byRole['A leader'])} ms, A follower ${p50(byRole['A follower'])} ms, B follower (remote, and local behind it) ${p50(byRole['B follower'])} ms, B leader (own upstream call) ${p50(byRole['B leader'])} ms`);
      // Same run, same flights: how much later B's copies (following through Redis) have their whole
      // answer than the local followers on the leading instance (medians per flight).
      const delays: number[] = [];
      for (const ends of Object.values(finishedAt)) {
        const local = [...(ends['A follower'] ?? [])].sort((x, y) => x - y);
        const remote = [...(ends['B follower'] ?? [])].sort((x, y) => x - y);
        if (local.length > 0 && remote.length > 0) delays.push(percentile(remote, 50) - percentile(local, 50));
      }
      delays.sort((x, y) => x - y);
      (report.cross as Record<string, unknown>).remoteFollowerAddedMs = { p50: percentile(delays, 50), p99: percentile(delays, 99), flights: delays.length };
      out(`cross-instance follower completes after the leading instance's local followers by ${fmt(percentile(delays, 50))} ms at p50, ${fmt(percentile(delays, 99))} ms at p99 (${delays.length} flights)`);
    }
  }

  if (phase('bigbody')) {
    // One body just under the 32 MiB limits (gateway MAX_BODY_BYTES and the mock's own), sent alone.
    const mock = await startMock('1');
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    const size = 32 * 1024 * 1024 - 64 * 1024;
    const results = [];
    for (const [name, body] of [['many keys', manyKeysBody(size)], ['long text', longTextBody(size)]] as const) {
      results.push(await bigBodyStall(gateway.url, name, body));
    }
    await gateway.stop();
    await mock.stop();
    report.bigbody = results;
    out('\n## Event-loop stall of one 32 MiB JSON body (longest GET /healthz round trip while it is processed; median of 3)');
    out('| body | bytes | status | stall ms | JSON.parse alone ms | stall / parse | idle probe ms |');
    out('|---|---|---|---|---|---|---|');
    for (const r of results) out(`| ${r.name} | ${r.bytes} | ${r.status} | ${fmt(r.stallMs, 1)} | ${fmt(r.parseMs, 1)} | ${fmt(r.stallMs / r.parseMs)} | ${fmt(r.idleProbeMs, 2)} |`);
  }

  if (phase('failover')) {
    // (a) The added latency of a failover whose first attempt is refused at connect, against the same
    //     gateway configured with the secondary alone; sequential, one connection, every body distinct.
    // (b) The hot-path cost of routing: CPU per request with three upstreams configured against one
    //     (same mock behind all three, every body distinct, 1,000 req/s).
    const mock = await startMock('1');
    const dead = `http://127.0.0.1:${await freePort()}`;
    const single = JSON.stringify([{ name: 'secondary', url: mock.url }]);
    const failing = JSON.stringify([{ name: 'dead', url: dead }, { name: 'secondary', url: mock.url, tier: 1 }]);
    const three = JSON.stringify([{ name: 'a', url: mock.url, weight: 2 }, { name: 'b', url: mock.url }, { name: 'c', url: `${mock.url}/`, tier: 1 }]);
    const latency: Record<string, number> = {};
    let n = 7_000_000;
    for (const [name, upstreams] of [['secondary only', single], ['dead primary, then secondary', failing]] as const) {
      const gateway = await startGateway('0', mock.url, { ...gatewayEnv, UPSTREAMS: upstreams, BREAKER: 'off' });
      const base = (n += 100_000);
      await streamTimings(gateway.url, 50, (i) => plain1k(base + i));
      latency[name] = (await streamTimings(gateway.url, 300, (i) => plain1k(base + 50_000 + i))).total.p50;
      await gateway.stop();
    }
    const cpu: Record<string, CpuResult> = {};
    for (const [name, upstreams] of [['one upstream', single], ['three upstreams (two weighted in tier 0)', three]] as const) {
      const gateway = await startGateway('0', mock.url, { ...gatewayEnv, UPSTREAMS: upstreams });
      cpu[name] = await cpuAtRate(mock, gateway, pidOf(gateway), 1000, seconds, plain1k, 2);
      await gateway.stop();
    }
    await mock.stop();
    report.failover = { latencyP50Ms: latency, cpu };
    out('\n## Failover (breaker off so every call fails over; sequential, one connection, 300 requests after 50 unrecorded, 1 KB, every body distinct)');
    out(machineLine());
    out('| gateway configured with | p50 ms | added by the failover ms |');
    out('|---|---|---|');
    for (const [name, v] of Object.entries(latency)) out(`| ${name} | ${fmt(v)} | ${name === 'secondary only' ? '' : fmt(v - (latency['secondary only'] ?? NaN))} |`);
    out('\n## Routing cost: CPU per request with three upstreams against one (1 KB at 1,000 req/s, every body distinct)');
    out('| gateway configured with | completed | errors | proxy CPU µs/req | vs one upstream |');
    out('|---|---|---|---|---|');
    for (const [name, v] of Object.entries(cpu)) out(`| ${name} | ${v.completed} | ${v.errors} | ${fmt(v.cpuUsPerRequest, 0)} | ${ratio(v.cpuUsPerRequest, cpu['one upstream']?.cpuUsPerRequest)} |`);
  }

  if (phase('kinds')) {
    // CPU per request of the gateway serving from each kind's mock: Anthropic (pass-through of bytes), Bedrock
    // (in-place body edits, SigV4 signing, event stream decoded into SSE), Vertex (body edits, ADC bearer).
    // Plain 1 KB and streams of 16 events at 300 req/s, every body distinct; a kind's stream CPU over the
    // Anthropic stream's, divided by its 16 events, is the translation's cost per event. The mock answers in
    // each provider's framing. Then the event-stream translator alone, in this process (no sockets).
    const dir = mkdtempSync(join(tmpdir(), 'bench-kinds-'));
    const gatewayKey = HEADERS['x-api-key'];
    const awsKey = { id: 'AKIABENCH00000000001', secret: 'bench/secret/0000000000000000000000000000' };
    const results: Record<string, { plain: CpuResult; stream: CpuResult }> = {};
    try {
      for (const kind of ['anthropic', 'bedrock', 'vertex'] as const) {
        const mock = await startMock('1', { MOCK_KIND: kind, MOCK_BEDROCK_KEYS: `${awsKey.id}:${awsKey.secret}` });
        const env: Record<string, string> = { GATEWAY_API_KEYS: gatewayKey, BENCH_ANTHROPIC_KEY: 'sk-ant-bench-held-000000' };
        let entry: Record<string, unknown>;
        if (kind === 'anthropic') entry = { name: 'anthropic', url: mock.url, api_key_env: 'BENCH_ANTHROPIC_KEY' };
        else if (kind === 'bedrock') {
          entry = { name: 'bedrock', kind, url: mock.url, region: 'us-east-1' };
          Object.assign(env, { AWS_ACCESS_KEY_ID: awsKey.id, AWS_SECRET_ACCESS_KEY: awsKey.secret, AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true' });
        } else {
          entry = { name: 'vertex', kind, url: mock.url, region: 'us-east5', project: 'test-project' };
          writeFileSync(join(dir, 'subject'), 'bench-subject-token');
          const adc = join(dir, 'adc.json');
          writeFileSync(adc, JSON.stringify({ type: 'external_account', audience: '//iam.googleapis.com/bench', subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_url: `${mock.url}/_mock/google/token`, credential_source: { file: join(dir, 'subject') } }));
          env.GOOGLE_APPLICATION_CREDENTIALS = adc;
        }
        const gateway = await startGateway('0', mock.url, { ...env, UPSTREAMS: JSON.stringify([entry]) });
        const pid = pidOf(gateway);
        results[kind] = { plain: await cpuAtRate(mock, gateway, pid, 300, seconds, plain1k, 2), stream: await cpuAtRate(mock, gateway, pid, 300, seconds, stream, 2) };
        await gateway.stop();
        await mock.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    report.kinds = results;
    const anthropicStream = results.anthropic?.stream.cpuUsPerRequest;
    const perEvent = (r: { plain: CpuResult; stream: CpuResult } | undefined): number | undefined =>
      r?.stream.cpuUsPerRequest === undefined || anthropicStream === undefined ? undefined : (r.stream.cpuUsPerRequest - anthropicStream) / STREAM_EVENTS;
    out('\n## Upstream kinds: gateway CPU per request serving from the Anthropic, Bedrock and Vertex mocks (300 req/s, every body distinct)');
    out(machineLine());
    out('| kind | plain completed / errors | plain CPU µs/req | vs anthropic | stream completed / errors | stream CPU µs/req | vs anthropic | extra CPU µs per stream event (vs anthropic) / 16 |');
    out('|---|---|---|---|---|---|---|---|');
    for (const [kind, r] of Object.entries(results)) {
      out(
        `| ${kind} | ${r.plain.completed} / ${r.plain.errors} | ${fmt(r.plain.cpuUsPerRequest, 0)} | ${ratio(r.plain.cpuUsPerRequest, results.anthropic?.plain.cpuUsPerRequest)} | ${r.stream.completed} / ${r.stream.errors} | ${fmt(r.stream.cpuUsPerRequest, 0)} | ${ratio(r.stream.cpuUsPerRequest, anthropicStream)} | ${kind === 'anthropic' ? '' : fmt(perEvent(r), 1)} |`,
      );
    }
    const translator = await translatorCost();
    report.kindsTranslator = translator;
    out(`\nThe Bedrock event-stream translator alone (decode, CRC checks, base64, SSE framing; in process, ${translator.events} events of the mock's stream): ${fmt(translator.usPerEvent, 2)} CPU µs per event.`);
  }

  const soakSeconds = Number(args.get('soak') ?? '0');
  if (soakSeconds > 0) {
    const mock = await startMock('1', { MOCK_EVENT_INTERVAL_MS: '2' });
    const gateway = await startGateway('0', mock.url, gatewayEnv);
    const samples: number[] = [];
    const pid = pidOf(gateway);
    const end = Date.now() + soakSeconds * 1000;
    let i = 0;
    const pool = new Pool(gateway.url, { connections: 32 });
    const sampler = setInterval(() => samples.push(rssMiB(pid, 'VmRSS')), 30_000);
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (Date.now() < end) {
          const n = i++;
          const r = n % 3 === 0 ? stream(n) : plain1k(n);
          const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
          await res.body.dump();
        }
      }),
    );
    clearInterval(sampler);
    await pool.close();
    await gateway.stop();
    await mock.stop();
    report.soak = { seconds: soakSeconds, requests: i, rssSamplesMiB: samples };
    out(`\n## Soak (${soakSeconds} s mixed traffic, 32 connections, distinct bodies): ${i} requests; RSS every 30 s (MiB): ${samples.map((s) => fmt(s, 1)).join(', ')}`);
  }

  if (phase('prompt-cache')) {
    // Cache-affinity routing on the caching mock: one key, three keys without affinity, three with it (benchmarks/prompt-cache.ts).
    const mock = await startMock('1');
    const gatewayKey = HEADERS['x-api-key'];
    const keys = { BENCH_KEY_1: 'sk-ant-bench-key-one-00000', BENCH_KEY_2: 'sk-ant-bench-key-two-00000', BENCH_KEY_3: 'sk-ant-bench-key-three-000' };
    const entries = (n: number): string => JSON.stringify(Object.keys(keys).slice(0, n).map((env, i) => ({ name: `key-${i + 1}`, url: mock.url, api_key_env: env })));
    const configurations: [string, Record<string, string>][] = [
      ['one key (upper bound)', { UPSTREAMS: entries(1) }],
      ['three keys, no affinity', { UPSTREAMS: entries(3), CACHE_AFFINITY: 'off' }],
      ['three keys, affinity', { UPSTREAMS: entries(3), CACHE_AFFINITY: 'on' }],
    ];
    const results: Record<string, PromptCacheResult> = {};
    for (const [name, env] of configurations) {
      // Every configuration starts with cold caches.
      await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
      const gateway = await startGateway('0', mock.url, { ...gatewayEnv, GATEWAY_API_KEYS: gatewayKey, ...keys, ...env });
      results[name] = await promptCacheRun(gateway.url, gatewayKey);
      await gateway.stop();
    }
    await mock.stop();
    const upper = results['one key (upper bound)']?.readShare ?? NaN;
    const affinity = results['three keys, affinity'];
    const busiest = (r: PromptCacheResult): number => Math.max(...Object.values(r.perKey)) / Math.max(1, r.calls - r.errors);
    const met = affinity !== undefined && affinity.errors === 0 && affinity.readShare >= 0.95 * upper && busiest(affinity) <= 0.4;
    report.promptCache = { workload: PROMPT_CACHE_WORKLOAD, results, targetMet: met };
    const w = PROMPT_CACHE_WORKLOAD;
    out(`\n## Prompt cache: cache-affinity routing (${w.sessions} Claude-Code-like sessions x ${w.turns} turns, interleaved, ${w.concurrency} at a time; 20k-token head per project; the caching mock)`);
    out(machineLine());
    out('| configuration | calls | errors | cache-read share of input tokens | vs one key | input / cache write / cache read tokens | USD (list prices) | calls per key | busiest key | seconds |');
    out('|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, r] of Object.entries(results)) {
      const load = Object.entries(r.perKey).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`).join(', ');
      out(`| ${name} | ${r.calls} | ${r.errors} | ${pct(r.readShare)} | ${pct(r.readShare / upper)} | ${r.tokens.input} / ${r.tokens.cache_creation} / ${r.tokens.cache_read} | ${fmt(r.usd)} | ${load} | ${pct(busiest(r))} | ${fmt(r.seconds, 1)} |`);
    }
    out(`Target (affinity reaches 95 % of the one-key read share, no key above 40 % of the calls): ${met ? 'met' : 'NOT met'}.`);
  }

  out('\n```json');
  out(JSON.stringify(report));
  out('```');
}

/** CPU of EventStreamToSse per event, over many copies of a 16-event Bedrock stream in one pass. */
async function translatorCost(): Promise<{ events: number; usPerEvent: number }> {
  const events = [
    '{"type":"message_start","message":{"id":"msg_mock_0123456789abcdef01234567","type":"message","role":"assistant","model":"claude-sonnet-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}',
    '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    '{"type":"ping"}',
    ...Array.from({ length: 10 }, (_, i) => `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word${i}"}}`),
    '{"type":"content_block_stop","index":0}',
    '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10}}',
    '{"type":"message_stop"}',
  ];
  const frames = events.map((e) => chunkFrame(Buffer.from(e)));
  const copies = 5_000;
  const run = async (n: number): Promise<number> => {
    const sse = new EventStreamToSse();
    const drained = (async () => {
      for await (const _chunk of sse as AsyncIterable<Buffer>) {
        // consumed
      }
    })();
    const started = process.cpuUsage();
    for (let i = 0; i < n; i++) for (const frame of frames) sse.write(frame);
    sse.end();
    await drained;
    const used = process.cpuUsage(started);
    return used.user + used.system;
  };
  await run(500); // warm-up
  const us = await run(copies);
  return { events: copies * frames.length, usPerEvent: us / (copies * frames.length) };
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
