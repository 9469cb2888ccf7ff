import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/ports.js';
import { AllocationSampler, type AllocationProfile } from './heap-profile.js';
import { fixedRate, median } from './load.js';
import { describeMachine, pinSelf, processCpuSeconds, rssMiB } from './machine.js';
import { pidOf, startBareProxy, startGateway, startGovernedGateway, startMock, startRedisServer, type Running } from './processes.js';
import { HEADERS, plain1k, plain1m } from './workloads.js';

/**
 * Builds and settings against each other, in the same run: CPU µs per request of the bare
 * node:http + undici proxy, this build, optionally a base build and variants of this build with
 * other settings. Every body distinct; the proxies on CPU 0, mock and load on CPU 1.
 *
 *   git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci && npm run build)
 *   npm run build && node dist/benchmarks/compare.js [--base=/tmp/base/dist/src] [--variant='name:K=V;K=V' ...]
 *       [--rate=1000] [--seconds=1.5] [--rounds=20] [--size=1k|1m] [--env=K=V;K=V] [--fresh] [--governed]
 *       [--alloc-rounds=3] [--alloc-seconds=2] [--allocations[=20]] [--rss[=3]] [--bare-forwarding]
 *
 * Steady (the default): every target is started once and warmed, then each round gives every target
 * one short window at `rate`, in a new random order per round. This machine has slow phases lasting
 * tens of seconds that add a similar number of µs to every request of every process; short windows
 * in shuffled order spread them over all targets alike, and the median of many rounds drops them.
 * `--fresh` starts each target anew for every round (2 s warm-up, `seconds` recorded): what a process
 * costs early in its life (V8 still tiering up, start-up objects still in the young generation).
 *
 * Reported per target: the median µs/req, its ratio to the bare proxy's median, the median of the
 * per-round differences to the bare proxy (the µs the target adds; steadier than a ratio, since slow
 * phases add to both sides) and every round.
 * `--env` applies to every gateway target; `--variant` adds this build again with more settings;
 * `--bare-forwarding` adds the bare proxy forwarding every header both ways (benchmarks/bare-proxy.ts):
 * what forwarding alone costs node and undici, apart from the gateway's own work.
 * `--governed` adds this build with every request a governed key's (budget reservation, settle,
 * headers, ledger row: benchmarks/governed-main.ts), to read what governance adds per request; with
 * `--base` too, the base build governed as well, and for each build the median of the per-round
 * differences governed minus static key (what governance adds, before and after, in one run).
 *
 * Allocation per request (steady mode): after the CPU rounds, `--alloc-rounds` windows per target of
 * `--alloc-seconds` at `rate`, in shuffled order, each sampled by V8's sampling heap profiler over the
 * inspector (benchmarks/heap-profile.ts: every allocation, those a collection freed included). The
 * profiler is opened only then, so it costs the CPU windows nothing. `--allocations[=N]` also prints
 * each gateway's N top allocation sites (bytes per request, summed over its windows), the governed
 * ones included (they open their inspector like the others).
 *
 * `--rss[=N]`: idle RSS, each target started anew N times (default 3) per configuration, one request,
 * a second to settle, then VmRSS; then again after a full collection (HeapProfiler.collectGarbage over
 * the inspector, which then holds a little memory itself): the median of each. Configurations: the defaults, and a full one (Redis,
 * OpenTelemetry tracing, the governance store and admin listener, Bedrock and Vertex upstreams beside
 * the Anthropic one) for the gateways. `--rounds=0` skips the CPU rounds.
 */

type Args = Map<string, string[]>;
const args: Args = new Map();
for (const a of process.argv.slice(2)) {
  const [key, value] = a.replace(/^--/, '').split(/=(.*)/s, 2) as [string, string | undefined];
  args.set(key, [...(args.get(key) ?? []), value ?? '']);
}
const one = (key: string): string | undefined => args.get(key)?.at(-1);
const parseEnv = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split(';')
      .filter((kv) => kv.includes('='))
      .map((kv) => kv.split(/=(.*)/s, 2) as [string, string]),
  );

const base = one('base');
const fresh = args.has('fresh');
const rate = Number(one('rate') ?? '1000');
const seconds = Number(one('seconds') ?? (fresh ? '4' : '1.5'));
const rounds = Number(one('rounds') ?? (fresh ? '4' : '20'));
const make = one('size') === '1m' ? plain1m : plain1k;
const env = parseEnv(one('env') ?? '');

const allocRounds = Number(one('alloc-rounds') ?? '3');
const allocSeconds = Number(one('alloc-seconds') ?? '2');
const topSites = args.has('allocations') ? Number(one('allocations') || '20') : 0;
const rssReps = args.has('rss') ? Number(one('rss') || '3') : 0;

const BARE = 'bare node:http + undici';
/** A started target: the process, and the port its inspector opens on (SIGUSR1) for allocation sampling. */
interface Started {
  proxy: Running;
  inspectPort: number;
}
/** A target's name, whether it is a gateway (full configuration, top sites) and how to start it in front of the mock. */
interface Target {
  name: string;
  gateway: boolean;
  start(mockUrl: string, nodeArgs: string[], extraEnv?: Record<string, string>): Promise<Running>;
}
const BASE = `gateway base (${base})`;
const BASE_GOVERNED = 'base, governed key (budget reservation + ledger)';
const THIS = 'gateway this build';
const THIS_GOVERNED = 'this build, governed key (budget reservation + ledger)';
const targets: Target[] = [{ name: BARE, gateway: false, start: (u, n) => startBareProxy('0', u, n) }];
/** --bare-forwarding: the bare proxy again, forwarding every header both ways (what forwarding alone costs). */
const BARE_FORWARDING = 'bare, forwarding every header';
if (args.has('bare-forwarding')) targets.push({ name: BARE_FORWARDING, gateway: false, start: (u, n) => startBareProxy('0', u, n, { BARE_FORWARD_HEADERS: '1' }) });
if (base !== undefined) targets.push({ name: BASE, gateway: true, start: (u, n, e) => startGateway('0', u, { ...env, ...e }, n, base) });
if (base !== undefined && args.has('governed')) targets.push({ name: BASE_GOVERNED, gateway: false, start: (u, n) => startGovernedGateway('0', u, env, base, n) });
targets.push({ name: THIS, gateway: true, start: (u, n, e) => startGateway('0', u, { ...env, ...e }, n) });
if (args.has('governed')) targets.push({ name: THIS_GOVERNED, gateway: false, start: (u, n) => startGovernedGateway('0', u, env, undefined, n) });
for (const spec of args.get('variant') ?? []) {
  const [name, settings] = spec.split(/:(.*)/s, 2) as [string, string | undefined];
  const extra = parseEnv(settings ?? '');
  targets.push({ name: `this build, ${name}`, gateway: true, start: (u, n, e) => startGateway('0', u, { ...env, ...extra, ...e }, n) });
}
/** The full configuration's gateway key (every upstream holds its credential, so clients present a gateway key). */
const FULL_CLIENT_KEY = 'bench-gateway-key-0000000000';
/**
 * Everything optional on: Redis coordination, OpenTelemetry tracing (OTLP to a closed loopback port),
 * the governance store (PGlite in a fresh temporary directory) with its admin listener and console, and Bedrock and Vertex
 * upstreams after the Anthropic one (never reached: the first answers).
 */
function fullConfiguration(mockUrl: string, redisUrl: string): Record<string, string> {
  return {
    UPSTREAMS: JSON.stringify([
      { name: 'primary', kind: 'anthropic', url: mockUrl, api_key_env: 'BENCH_ANTHROPIC_KEY' },
      { name: 'bedrock', kind: 'bedrock', url: 'http://127.0.0.1:9', region: 'us-east-1', bearer_token_env: 'BENCH_BEDROCK_TOKEN' },
      { name: 'vertex', kind: 'vertex', url: 'http://127.0.0.1:9', region: 'us-east5', project: 'bench-project' },
    ]),
    BENCH_ANTHROPIC_KEY: 'sk-ant-bench-upstream-0000000000',
    BENCH_BEDROCK_TOKEN: 'bench-bedrock-token-0000000000',
    GATEWAY_API_KEYS: FULL_CLIENT_KEY,
    REDIS_URL: redisUrl,
    TENANT_HASH_KEY: 'bench-tenant-hash-key-0000000000',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    ADMIN_API_KEY: 'bench-admin-key-000000000000000000000000',
    ADMIN_PORT: '0',
    // On disk, as deployed (`memory:` would hold the whole database in the process's memory).
    GOVERNANCE_DATA_DIR: mkdtempSync(join(tmpdir(), 'cgw-bench-governance-')),
  };
}
/** Started with an inactive inspector port: nothing listens until the allocation phase sends SIGUSR1. */
async function startTarget(target: Target, mockUrl: string): Promise<Started> {
  const inspectPort = await freePort();
  return { proxy: await target.start(mockUrl, [`--inspect-port=127.0.0.1:${inspectPort}`]), inspectPort };
}

const machine = describeMachine();
pinSelf('1');
const mock = await startMock('1');
let offset = Math.floor(Math.random() * 1e9);
/** Distinct bodies across every window of the run. */
const nextBodies = (): number => (offset += 1_000_000);

async function measure(proxy: Running, warmupSeconds: number): Promise<number> {
  const pid = pidOf(proxy);
  let cpu0 = 0;
  let cpu1 = 0;
  const first = nextBodies();
  const r = await fixedRate(proxy.url, rate, seconds, (i) => make(first + i), {
    warmupSeconds,
    before: () => void (cpu0 = processCpuSeconds(pid)),
    after: () => void (cpu1 = processCpuSeconds(pid)),
  });
  return ((cpu1 - cpu0) * 1e6) / Math.max(1, r.sent - r.errors);
}

/** One window at `rate` with every allocation of the process sampled: bytes per completed request. */
async function measureAllocation(proxy: Running, sampler: AllocationSampler): Promise<AllocationProfile & { requests: number }> {
  let profile: AllocationProfile | undefined;
  const first = nextBodies();
  const r = await fixedRate(proxy.url, rate, allocSeconds, (i) => make(first + i), {
    warmupSeconds: 0.3,
    before: () => sampler.start(),
    after: async () => void (profile = await sampler.stop()),
  });
  if (profile === undefined) throw new Error('no allocation profile');
  return { ...profile, requests: Math.max(1, r.sent - r.errors) };
}

const results = new Map<string, number[]>(targets.map(({ name }) => [name, []]));
const record = (name: string, us: number): void => void results.get(name)?.push(us);
/** Bytes per request of each allocation window, and bytes per request by site summed over the windows. */
const allocations = new Map<string, { perRequest: number[]; sites: Map<string, number> }>(targets.map(({ name }) => [name, { perRequest: [], sites: new Map() }]));
if (fresh) {
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const { proxy } = await startTarget(target, mock.url);
      record(target.name, await measure(proxy, 2));
      await proxy.stop();
    }
  }
} else {
  const running: [string, Started][] = [];
  for (const target of targets) running.push([target.name, await startTarget(target, mock.url)]);
  // Warm every target well past V8's tier-up before anything is recorded.
  for (const [, { proxy }] of running) {
    const first = nextBodies();
    await fixedRate(proxy.url, rate, 4, (i) => make(first + i), { warmupSeconds: 0 });
  }
  for (let round = 0; round < rounds; round++) {
    const order = [...running].sort(() => Math.random() - 0.5);
    for (const [name, { proxy }] of order) record(name, await measure(proxy, 0.3));
  }
  // Allocation after every CPU window: the inspector, once open, stays open.
  const samplers = new Map(running.map(([name, { proxy, inspectPort }]) => [name, new AllocationSampler(pidOf(proxy), inspectPort)]));
  for (let round = 0; round < allocRounds; round++) {
    const order = [...running].sort(() => Math.random() - 0.5);
    for (const [name, { proxy }] of order) {
      const sampler = samplers.get(name) as AllocationSampler;
      const into = allocations.get(name);
      const profile = await measureAllocation(proxy, sampler);
      into?.perRequest.push(profile.totalBytes / profile.requests);
      for (const { site, bytes } of profile.sites) into?.sites.set(site, (into.sites.get(site) ?? 0) + bytes / profile.requests / allocRounds);
    }
  }
  for (const sampler of samplers.values()) sampler.close();
  for (const [, { proxy }] of running) await proxy.stop();
}

/** Idle RSS of each target per configuration: started anew, one request, a second to settle. */
const idleRss = new Map<string, number[]>();
if (rssReps > 0) {
  const redis = await startRedisServer();
  const configurations: [string, Record<string, string> | undefined][] = [['defaults', undefined]];
  if (redis === undefined) process.stderr.write('redis-server not installed: no full configuration\n');
  else configurations.push(['full (Redis, tracing, store + admin, Bedrock + Vertex)', fullConfiguration(mock.url, redis.url)]);
  for (let rep = 0; rep < rssReps; rep++) {
    for (const [configName, extra] of configurations) {
      for (const target of targets) {
        if (extra !== undefined && !target.gateway) continue;
        const inspectPort = await freePort();
        const proxy = await target.start(mock.url, [`--inspect-port=127.0.0.1:${inspectPort}`], extra);
        const answer = await fetch(`${proxy.url}/v1/messages`, { method: 'POST', headers: extra === undefined ? HEADERS : { ...HEADERS, 'x-api-key': FULL_CLIENT_KEY }, body: make(nextBodies()).body });
        await answer.arrayBuffer();
        if (answer.status !== 200) process.stderr.write(`${target.name}, ${configName}: the request got ${answer.status}\n`);
        await new Promise((r) => setTimeout(r, 1000));
        const key = `${target.name} | ${configName}`;
        idleRss.set(key, [...(idleRss.get(key) ?? []), rssMiB(pidOf(proxy), 'VmRSS')]);
        // Then what stays after a full collection: the memory held, not garbage not yet collected.
        const sampler = new AllocationSampler(pidOf(proxy), inspectPort);
        await sampler.collectGarbage();
        sampler.close();
        await new Promise((r) => setTimeout(r, 500));
        const afterGcKey = `${key} | after a full collection`;
        idleRss.set(afterGcKey, [...(idleRss.get(afterGcKey) ?? []), rssMiB(pidOf(proxy), 'VmRSS')]);
        await proxy.stop();
      }
    }
  }
  await redis?.stop();
}
await mock.stop();

const bare = results.get(BARE) ?? [];
const bareMedian = median(bare);
const out = (line: string): void => void process.stdout.write(line + '\n');
out(`machine: ${machine.cores} x ${machine.cpuModel}, Linux ${machine.kernel}, node ${machine.node}; ${new Date().toISOString()}`);
out(
  `${one('size') ?? '1k'} bodies at ${rate} req/s, ${fresh ? 'fresh processes' : 'steady (started once, warmed 4 s, shuffled windows)'}, ${rounds} rounds x ${seconds} s` +
    (Object.keys(env).length > 0 ? `, env ${JSON.stringify(env)}` : ''),
);
const kb = (bytes: number): string => (bytes / 1024).toFixed(1);
const bareAlloc = median(allocations.get(BARE)?.perRequest ?? []);
if (rounds > 0 || allocRounds > 0) {
  out('| target | CPU µs/req (median) | / bare | added over bare (median of rounds) | allocated KB/req (median) | / bare | per round (CPU µs) | per window (KB) |');
  out('|---|---|---|---|---|---|---|---|');
  for (const [name, xs] of results) {
    const added = xs.length === 0 ? NaN : median(xs.map((x, i) => x - (bare[i] ?? NaN)));
    const alloc = allocations.get(name)?.perRequest ?? [];
    out(
      `| ${name} | ${median(xs).toFixed(0)} | ${(median(xs) / bareMedian).toFixed(2)}x | ${name === BARE ? '-' : `+${added.toFixed(0)}`} | ` +
        `${alloc.length === 0 ? '-' : kb(median(alloc))} | ${alloc.length === 0 ? '-' : `${(median(alloc) / bareAlloc).toFixed(2)}x`} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${alloc.map(kb).join(', ')} |`,
    );
  }
}
/** What the governed key adds over the static key of the same build: the median of per-round differences. */
for (const [governed, plain] of [[BASE_GOVERNED, BASE], [THIS_GOVERNED, THIS]] as const) {
  const g = results.get(governed);
  const p = results.get(plain);
  if (g === undefined || p === undefined) continue;
  out(`${governed} over ${plain}: +${median(g.map((x, i) => x - (p[i] ?? NaN))).toFixed(1)} µs CPU/req (median of rounds)`);
}
if (topSites > 0) {
  for (const { name } of targets) {
    const sites = allocations.get(name)?.sites;
    if (name === BARE || sites === undefined || sites.size === 0) continue;
    out('');
    out(`Top allocation sites, ${name} (bytes per request, mean of ${allocRounds} windows; self bytes of each function):`);
    out('| bytes/req | site |');
    out('|---|---|');
    for (const [site, bytes] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, topSites)) out(`| ${bytes.toFixed(0)} | ${site} |`);
  }
}
if (idleRss.size > 0) {
  out('');
  out(`Idle RSS after start-up and one request (MiB, median of ${rssReps} starts):`);
  out('| target | configuration | when | RSS MiB | each start |');
  out('|---|---|---|---|---|');
  for (const [key, xs] of idleRss) {
    const [name, configuration, when] = key.split(' | ');
    out(`| ${name} | ${configuration} | ${when ?? 'idle, 1 s after one request'} | ${median(xs).toFixed(1)} | ${xs.map((x) => x.toFixed(1)).join(', ')} |`);
  }
}

