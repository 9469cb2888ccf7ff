import { Pool } from 'undici';

/** Open-loop and sequential load with microsecond timing (autocannon's histograms are whole milliseconds). */

export interface Request {
  path: string;
  body: string;
  headers: Record<string, string>;
}

/** The median of `xs` (the mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export interface LatencyResult {
  sent: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function summarize(latencies: number[], errors: number): LatencyResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { sent: latencies.length + errors, errors, p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/**
 * Fixed arrival rate for `seconds`: each request's latency is measured from when it was DUE, not
 * when it was sent, so a stalled target cannot hide its queueing (no coordinated omission).
 * `around` runs its callbacks right before and right after the recorded phase (after the warm-up),
 * so CPU readings cover exactly the recorded requests.
 */
export async function fixedRate(
  url: string,
  rate: number,
  seconds: number,
  make: (i: number) => Request,
  options: { warmupSeconds?: number; before?: () => Promise<void> | void; after?: () => Promise<void> | void } = {},
): Promise<LatencyResult> {
  const pool = new Pool(url, { connections: 256, pipelining: 1 });
  // Same load, unrecorded, first: JIT, lazy loading and connection set-up are not steady state.
  // Warm-up requests use their own numbers, so no recorded body repeats a warm-up one.
  const warmup = options.warmupSeconds ?? 3;
  if (warmup > 0) await openLoop(pool, rate, warmup, (i) => make(-1 - i), () => undefined);
  const latencies: number[] = [];
  let errors = 0;
  await options.before?.();
  await openLoop(pool, rate, seconds, make, (latency) => {
    if (latency === undefined) errors++;
    else latencies.push(latency);
  });
  await options.after?.();
  await pool.close();
  return summarize(latencies, errors);
}

async function openLoop(pool: Pool, rate: number, seconds: number, make: (i: number) => Request, record: (latency: number | undefined) => void): Promise<void> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  let i = 0;
  while (i < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    for (; i < due; i++) {
      const dueAt = start + (i / rate) * 1000;
      const r = make(i);
      inflight.push(
        pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body }).then(
          async (res) => {
            await res.body.dump();
            record(res.statusCode >= 400 ? undefined : performance.now() - dueAt);
          },
          () => record(undefined),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
}

export interface StreamTiming {
  ttfb: LatencyResult;
  total: LatencyResult;
}

/** An interleaved lane's timings, with each recorded round's time to first byte (NaN when that stream failed). */
export interface LaneTiming extends StreamTiming {
  ttfbByRound: number[];
}

/**
 * The median over rounds of `a`'s first-byte time minus `b`'s in the same round (rounds where both
 * streams succeeded): a paired difference, steadier than the difference of two medians on a busy machine.
 */
export function pairedTtfbDifference(a: LaneTiming, b: LaneTiming): number {
  const diffs: number[] = [];
  a.ttfbByRound.forEach((x, i) => {
    const y = b.ttfbByRound[i];
    if (Number.isFinite(x) && y !== undefined && Number.isFinite(y)) diffs.push(x - y);
  });
  return median(diffs);
}

/** One stream: ms to its first body byte and to its end; undefined when it failed. */
async function timeStream(pool: Pool, r: Request): Promise<{ ttfb: number; total: number } | undefined> {
  const t0 = performance.now();
  try {
    const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
    let first: number | undefined;
    for await (const _chunk of res.body) first ??= performance.now();
    if (res.statusCode >= 400 || first === undefined) return undefined;
    return { ttfb: first - t0, total: performance.now() - t0 };
  } catch {
    return undefined;
  }
}

/** Sequential streams: time to first body byte and to the end of the stream. */
export async function streamTimings(url: string, count: number, make: (i: number) => Request): Promise<StreamTiming> {
  const pool = new Pool(url, { connections: 1 });
  const ttfb: number[] = [];
  const total: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const timing = await timeStream(pool, make(i));
    if (timing === undefined) errors++;
    else {
      ttfb.push(timing.ttfb);
      total.push(timing.total);
    }
  }
  await pool.close();
  return { ttfb: summarize(ttfb, errors), total: summarize(total, errors) };
}

/**
 * Sequential streams to several targets at once, one request at a time, in rotating order: every
 * target is measured under the same machine conditions, request by request. (One target after the
 * other, a difference of a few tenths of a millisecond drowned in the drift between phases.) Each
 * target first takes `warmup` streams, 50 at a time, then 20 unrecorded rounds.
 */
export async function interleavedStreamTimings(
  targets: readonly { name: string; url: string }[],
  rounds: number,
  make: (i: number) => Request,
  warmup = 300,
): Promise<Record<string, LaneTiming>> {
  let n = 0;
  const next = (): Request => make(n++);
  for (const t of targets) {
    const pool = new Pool(t.url, { connections: 50 });
    let left = warmup;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (left > 0) {
          left--;
          const r = next();
          const res = await pool.request({ path: r.path, method: 'POST', headers: r.headers, body: r.body });
          await res.body.dump();
        }
      }),
    );
    await pool.close();
  }
  const lanes = targets.map((t) => ({ name: t.name, pool: new Pool(t.url, { connections: 1 }), ttfb: [] as number[], total: [] as number[], byRound: [] as number[], errors: 0 }));
  const one = async (lane: (typeof lanes)[number], record: boolean): Promise<void> => {
    const timing = await timeStream(lane.pool, next());
    if (!record) return;
    lane.byRound.push(timing?.ttfb ?? NaN);
    if (timing === undefined) lane.errors++;
    else {
      lane.ttfb.push(timing.ttfb);
      lane.total.push(timing.total);
    }
  };
  for (let round = 0; round < 20 + rounds; round++) {
    for (let j = 0; j < lanes.length; j++) await one(lanes[(round + j) % lanes.length] as (typeof lanes)[number], round >= 20);
  }
  const results: Record<string, LaneTiming> = {};
  for (const lane of lanes) {
    await lane.pool.close();
    results[lane.name] = { ttfb: summarize(lane.ttfb, lane.errors), total: summarize(lane.total, lane.errors), ttfbByRound: lane.byRound };
  }
  return results;
}
