import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LatencyRecords } from './latency-probe.js';
import { fixedRate, median, percentile, type LatencyResult } from './load.js';
import { pidOf, startBareProxy, startGateway, type Running } from './processes.js';
import { plain1k } from './workloads.js';

/**
 * What the response cache costs in latency (issue 30 item 4): added p50 and p99 over the direct
 * upstream at `rate` (open loop, latency from each request's scheduled send), 1 KB, every body
 * distinct (so every request misses and stores a new entry: the cache at its bounds, LRU churning),
 * for the bare node:http + undici proxy and the gateway with `CACHE` off and on; with `base`, the
 * base build's gateway too, both ways, so before and after come out of one run.
 *
 * Every target is started once (on CPU 0) and warmed; then each round gives every target (direct
 * included) one window of `windowSeconds` in a new random order. The machine's slow phases last
 * tens of seconds and hit every process alike: a round's added latency is the target's percentile
 * minus direct's in the same round, and the table shows the medians of rounds.
 */

export interface CacheP99Options {
  rate: number;
  rounds: number;
  windowSeconds: number;
  /** Another build's dist/src (a base build): its gateway runs beside this one's. */
  base?: string | undefined;
  /**
   * Where each proxy's time goes (benchmarks/latency-probe.ts preloaded into every proxy): per window,
   * the p99 of the proxy's own request time (head read to answer end) and of its upstream calls' time
   * to the answer head. The probe's channel subscribers cost each proxy a little CPU of their own.
   */
  split?: boolean;
}

/** Per-window percentiles (ms) of a proxy's own request time and of its upstream calls' time to the answer head. */
export interface LatencySplit {
  requestP99: number;
  upstreamHeadP99: number;
  /**
   * Of the window's requests at or above the proxy's own p99, the share whose own time (head read to
   * answer end) overlapped a young-generation pause, and an old-generation one: how much of the tail
   * the collector explains. A request delayed before its head was read is not counted (its own time
   * starts after the pause), so these are lower bounds.
   */
  tailInYoungPause: number;
  tailInOldPause: number;
  /** Collector pause per second of the window (ms), young and old. */
  youngPauseMsPerSecond: number;
  oldPauseMsPerSecond: number;
}

export interface CacheP99Target {
  name: string;
  /** Each round's window. */
  windows: LatencyResult[];
  /** Medians of rounds. */
  p50: number;
  p99: number;
  /** Medians of the per-round differences to direct (undefined for direct itself). */
  addedP50: number | undefined;
  addedP99: number | undefined;
  /**
   * The median over rounds of the target's p99 minus the bare proxy's in the same round: what the
   * target adds over the floor for any Node proxy (undefined for direct and the bare proxy itself).
   */
  overBareP99: number | undefined;
  errors: number;
  /**
   * The gateway's collector pauses per completed request (its own nodejs_gc_duration_seconds, read
   * around each window; over all rounds, since an old-generation pause comes every few windows):
   * young generation (scavenges) and old (mark-compact, incremental marking steps). Undefined for
   * targets without the metric (direct, the bare proxy).
   */
  gcYoungUsPerRequest: number | undefined;
  gcOldUsPerRequest: number | undefined;
  /** With `split`: each round's split, and each field's median over rounds (undefined for direct). */
  splits: LatencySplit[];
  split: LatencySplit | undefined;
}

const PROBE = fileURLToPath(new URL('./latency-probe.js', import.meta.url));
const hrtimeUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Asks the probe in `pid` for its records (SIGUSR2) and waits, bounded, for the file it writes. */
async function probeRecords(dir: string, pid: number): Promise<LatencyRecords> {
  const file = join(dir, `latency-${pid}.json`);
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`the latency probe of pid ${pid} wrote nothing within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return JSON.parse(readFileSync(file, 'utf8')) as LatencyRecords;
}

/** The window's split: the records whose start lies in [from, to] (µs). */
function splitOf(records: LatencyRecords, from: number, to: number): LatencySplit {
  const inWindow = ([at]: readonly number[]): boolean => (at as number) >= from && (at as number) <= to;
  const p99 = (list: [number, number][]): number =>
    percentile(
      list.filter(inWindow).map(([, us]) => us / 1000).sort((a, b) => a - b),
      99,
    );
  const requestP99 = p99(records.requests);
  const tail = records.requests.filter((r) => inWindow(r) && r[1] / 1000 >= requestP99);
  // Pauses that began up to 1 s before the window can still overlap its first requests.
  const pauses = records.pauses.filter(([at]) => at >= from - 1_000_000 && at <= to);
  const share = (young: number): number => {
    const kind = pauses.filter((p) => p[2] === young);
    const overlapping = tail.filter(([at, us]) => kind.some(([start, pause]) => start < at + us && start + pause > at));
    return tail.length === 0 ? 0 : overlapping.length / tail.length;
  };
  const seconds = (to - from) / 1e6;
  const pauseMs = (young: number): number => pauses.filter((p) => p[2] === young && inWindow(p)).reduce((sum, p) => sum + p[1], 0) / 1000 / seconds;
  return {
    requestP99,
    upstreamHeadP99: p99(records.upstream),
    tailInYoungPause: share(1),
    tailInOldPause: share(0),
    youngPauseMsPerSecond: pauseMs(1),
    oldPauseMsPerSecond: pauseMs(0),
  };
}

/** Each field's median over rounds. */
function medianSplit(rounds: readonly LatencySplit[]): LatencySplit {
  const of = (field: keyof LatencySplit): number => median(rounds.map((r) => r[field]));
  return {
    requestP99: of('requestP99'),
    upstreamHeadP99: of('upstreamHeadP99'),
    tailInYoungPause: of('tailInYoungPause'),
    tailInOldPause: of('tailInOldPause'),
    youngPauseMsPerSecond: of('youngPauseMsPerSecond'),
    oldPauseMsPerSecond: of('oldPauseMsPerSecond'),
  };
}

/** Collector pause seconds so far by generation, from a gateway's /metrics (prom-client's nodejs_gc_duration_seconds). */
async function gcSeconds(url: string): Promise<{ young: number; old: number } | undefined> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text(), () => '');
  let young = 0;
  let old = 0;
  let seen = false;
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"[^}]*\} ([0-9.e+-]+)$/gm)) {
    seen = true;
    if (m[1] === 'minor') young += Number(m[2]);
    else if (m[1] === 'major' || m[1] === 'incremental') old += Number(m[2]);
  }
  return seen ? { young, old } : undefined;
}

export const DIRECT = 'direct';
export const BARE = 'bare node:http + undici';

const perRequest = (sum: { young: number; old: number; requests: number } | undefined, generation: 'young' | 'old'): number | undefined =>
  sum === undefined || sum.requests === 0 ? undefined : (sum[generation] * 1e6) / sum.requests;

/** The targets of the phase, started in front of the mock at `mockUrl`. */
function starters(mockUrl: string, base: string | undefined, probeDir: string | undefined): [string, () => Promise<Running>][] {
  const nodeArgs = probeDir === undefined ? [] : ['--import', PROBE];
  const probeEnv: Record<string, string> = probeDir === undefined ? {} : { LATENCY_PROBE_DIR: probeDir };
  const gateway = (name: string, cache: 'off' | 'on', distSrc?: string): [string, () => Promise<Running>] => [
    name,
    () => startGateway('0', mockUrl, { CACHE: cache, ...probeEnv }, nodeArgs, ...(distSrc === undefined ? [] : [distSrc])),
  ];
  return [
    [BARE, () => startBareProxy('0', mockUrl, nodeArgs, probeEnv)],
    ...(base === undefined ? [] : [gateway('gateway base, CACHE=off', 'off', base), gateway('gateway base, CACHE=on', 'on', base)]),
    gateway('gateway, CACHE=off', 'off'),
    gateway('gateway, CACHE=on', 'on'),
  ];
}

export async function cacheP99(mock: Running, options: CacheP99Options): Promise<CacheP99Target[]> {
  const { rate, rounds, windowSeconds } = options;
  const probeDir = options.split === true ? mkdtempSync(join(tmpdir(), 'cgw-latency-')) : undefined;
  let next = Math.floor(Math.random() * 1e9);
  /** Distinct bodies across every window of the run (a window sends fewer than 1,000,000). */
  const bodies = (): number => (next += 1_000_000);
  const running: [string, Running | undefined][] = [[DIRECT, undefined]];
  try {
    for (const [name, start] of starters(mock.url, options.base, probeDir)) running.push([name, await start()]);
    const urlOf = (proxy: Running | undefined): string => (proxy ?? mock).url;
    // Past V8's tier-up, and every cache at its entry bound (CACHE_MAX_ENTRIES, 1,000 by default), before anything is recorded.
    for (const [, proxy] of running) {
      const first = bodies();
      await fixedRate(urlOf(proxy), rate, 4, (i) => plain1k(first + i), { warmupSeconds: 0 });
    }
    const windows = new Map<string, LatencyResult[]>(running.map(([name]) => [name, []]));
    const gc = new Map<string, { young: number; old: number; requests: number }>();
    const splits = new Map<string, LatencySplit[]>(running.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      const order = [...running].sort(() => Math.random() - 0.5);
      for (const [name, proxy] of order) {
        const first = bodies();
        const gateway = name.startsWith('gateway');
        let before: { young: number; old: number } | undefined;
        let after: { young: number; old: number } | undefined;
        let from = 0;
        let to = 0;
        const window = await fixedRate(urlOf(proxy), rate, windowSeconds, (i) => plain1k(first + i), {
          warmupSeconds: 0.3,
          before: async () => {
            before = gateway ? await gcSeconds(urlOf(proxy)) : undefined;
            from = hrtimeUs();
          },
          after: async () => {
            to = hrtimeUs();
            after = gateway ? await gcSeconds(urlOf(proxy)) : undefined;
          },
        });
        windows.get(name)?.push(window);
        if (probeDir !== undefined && proxy !== undefined) splits.get(name)?.push(splitOf(await probeRecords(probeDir, pidOf(proxy)), from, to));
        const completed = window.sent - window.errors;
        if (before !== undefined && after !== undefined) {
          const sum = gc.get(name) ?? { young: 0, old: 0, requests: 0 };
          gc.set(name, { young: sum.young + after.young - before.young, old: sum.old + after.old - before.old, requests: sum.requests + completed });
        }
      }
    }
    const direct = windows.get(DIRECT) ?? [];
    const bare = windows.get(BARE) ?? [];
    return running.map(([name]) => {
      const ws = windows.get(name) ?? [];
      const added = (p: 'p50' | 'p99'): number | undefined => (name === DIRECT ? undefined : median(ws.map((w, i) => w[p] - (direct[i]?.[p] ?? NaN))));
      return {
        name,
        windows: ws,
        p50: median(ws.map((w) => w.p50)),
        p99: median(ws.map((w) => w.p99)),
        addedP50: added('p50'),
        addedP99: added('p99'),
        overBareP99: name === DIRECT || name === BARE ? undefined : median(ws.map((w, i) => w.p99 - (bare[i]?.p99 ?? NaN))),
        errors: ws.reduce((n, w) => n + w.errors, 0),
        gcYoungUsPerRequest: perRequest(gc.get(name), 'young'),
        gcOldUsPerRequest: perRequest(gc.get(name), 'old'),
        splits: splits.get(name) ?? [],
        split: probeDir === undefined || name === DIRECT ? undefined : medianSplit(splits.get(name) ?? []),
      };
    });
  } finally {
    for (const [, proxy] of running) await proxy?.stop();
    if (probeDir !== undefined) rmSync(probeDir, { recursive: true, force: true });
  }
}
