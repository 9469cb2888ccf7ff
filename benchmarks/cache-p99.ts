import { fixedRate, median, type LatencyResult } from './load.js';
import { startBareProxy, startGateway, type Running } from './processes.js';
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
  errors: number;
  /**
   * The gateway's collector pauses per completed request (its own nodejs_gc_duration_seconds, read
   * around each window; over all rounds, since an old-generation pause comes every few windows):
   * young generation (scavenges) and old (mark-compact, incremental marking steps). Undefined for
   * targets without the metric (direct, the bare proxy).
   */
  gcYoungUsPerRequest: number | undefined;
  gcOldUsPerRequest: number | undefined;
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
const BARE = 'bare node:http + undici';

const perRequest = (sum: { young: number; old: number; requests: number } | undefined, generation: 'young' | 'old'): number | undefined =>
  sum === undefined || sum.requests === 0 ? undefined : (sum[generation] * 1e6) / sum.requests;

/** The targets of the phase, started in front of the mock at `mockUrl`. */
function starters(mockUrl: string, base: string | undefined): [string, () => Promise<Running>][] {
  const gateway = (name: string, cache: 'off' | 'on', distSrc?: string): [string, () => Promise<Running>] => [
    name,
    () => startGateway('0', mockUrl, { CACHE: cache }, [], ...(distSrc === undefined ? [] : [distSrc])),
  ];
  return [
    [BARE, () => startBareProxy('0', mockUrl)],
    ...(base === undefined ? [] : [gateway('gateway base, CACHE=off', 'off', base), gateway('gateway base, CACHE=on', 'on', base)]),
    gateway('gateway, CACHE=off', 'off'),
    gateway('gateway, CACHE=on', 'on'),
  ];
}

export async function cacheP99(mock: Running, options: CacheP99Options): Promise<CacheP99Target[]> {
  const { rate, rounds, windowSeconds } = options;
  let next = Math.floor(Math.random() * 1e9);
  /** Distinct bodies across every window of the run (a window sends fewer than 1,000,000). */
  const bodies = (): number => (next += 1_000_000);
  const running: [string, Running | undefined][] = [[DIRECT, undefined]];
  try {
    for (const [name, start] of starters(mock.url, options.base)) running.push([name, await start()]);
    const urlOf = (proxy: Running | undefined): string => (proxy ?? mock).url;
    // Past V8's tier-up, and every cache at its entry bound (CACHE_MAX_ENTRIES, 1,000 by default), before anything is recorded.
    for (const [, proxy] of running) {
      const first = bodies();
      await fixedRate(urlOf(proxy), rate, 4, (i) => plain1k(first + i), { warmupSeconds: 0 });
    }
    const windows = new Map<string, LatencyResult[]>(running.map(([name]) => [name, []]));
    const gc = new Map<string, { young: number; old: number; requests: number }>();
    for (let round = 0; round < rounds; round++) {
      const order = [...running].sort(() => Math.random() - 0.5);
      for (const [name, proxy] of order) {
        const first = bodies();
        const gateway = name.startsWith('gateway');
        let before: { young: number; old: number } | undefined;
        let after: { young: number; old: number } | undefined;
        const window = await fixedRate(urlOf(proxy), rate, windowSeconds, (i) => plain1k(first + i), {
          warmupSeconds: 0.3,
          before: async () => void (before = gateway ? await gcSeconds(urlOf(proxy)) : undefined),
          after: async () => void (after = gateway ? await gcSeconds(urlOf(proxy)) : undefined),
        });
        windows.get(name)?.push(window);
        const completed = window.sent - window.errors;
        if (before !== undefined && after !== undefined) {
          const sum = gc.get(name) ?? { young: 0, old: 0, requests: 0 };
          gc.set(name, { young: sum.young + after.young - before.young, old: sum.old + after.old - before.old, requests: sum.requests + completed });
        }
      }
    }
    const direct = windows.get(DIRECT) ?? [];
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
        errors: ws.reduce((n, w) => n + w.errors, 0),
        gcYoungUsPerRequest: perRequest(gc.get(name), 'young'),
        gcOldUsPerRequest: perRequest(gc.get(name), 'old'),
      };
    });
  } finally {
    for (const [, proxy] of running) await proxy?.stop();
  }
}
