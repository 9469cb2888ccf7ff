import { subscribe } from 'node:diagnostics_channel';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';

/**
 * Preloaded (`node --import`) into a proxy by the cache-p99 phase's `--split`: where a request's time
 * goes inside the proxy, from the channels node:http and undici publish (nothing in the proxy changes).
 * For each request, when node:http had read its head and how long until its answer finished; for each
 * upstream call, when undici wrote its head and how long until the answer's head came back. Times are
 * microseconds of CLOCK_MONOTONIC (process.hrtime), the clock the load generator reads, so a window's
 * records are picked by the load generator's own timestamps. And every collector pause, from
 * perf_hooks' `gc` entries on the same clock: which of the slowest requests a pause overlapped.
 *
 * On SIGUSR2 the records so far go to `<LATENCY_PROBE_DIR>/latency-<pid>.json` (written whole, then
 * renamed into place) and are cleared. Bounded: past MAX_RECORDS per kind, later ones are dropped.
 */

export interface LatencyRecords {
  /** [head read at, µs to the answer's end] per request the proxy answered. */
  requests: [number, number][];
  /** [head written at, µs to the answer's head] per upstream call. */
  upstream: [number, number][];
  /** [start, µs, 1 for a young-generation collection (scavenge) else 0] per collector pause. */
  pauses: [number, number, number][];
}

const MAX_RECORDS = 500_000;
const dir = process.env.LATENCY_PROBE_DIR;

if (dir !== undefined) {
  const now = (): number => Number(process.hrtime.bigint() / 1000n);
  let records: LatencyRecords = { requests: [], upstream: [], pauses: [] };
  // performance.now() and process.hrtime are both monotonic: one offset maps a gc entry's start onto `now()`.
  const offsetUs = now() - performance.now() * 1000;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const young = (entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR ? 1 : 0;
      if (records.pauses.length < MAX_RECORDS) records.pauses.push([Math.round(offsetUs + entry.startTime * 1000), Math.round(entry.duration * 1000), young]);
    }
  }).observe({ entryTypes: ['gc'] });
  const requestStart = new WeakMap<object, number>();
  const upstreamStart = new WeakMap<object, number>();
  const push = (list: [number, number][], start: number | undefined): void => {
    if (start !== undefined && list.length < MAX_RECORDS) list.push([start, now() - start]);
  };
  subscribe('http.server.request.start', (m) => void requestStart.set((m as { request: object }).request, now()));
  subscribe('http.server.response.finish', (m) => push(records.requests, requestStart.get((m as { request: object }).request)));
  subscribe('undici:client:sendHeaders', (m) => void upstreamStart.set((m as { request: object }).request, now()));
  subscribe('undici:request:headers', (m) => push(records.upstream, upstreamStart.get((m as { request: object }).request)));
  process.on('SIGUSR2', () => {
    const file = join(dir, `latency-${process.pid}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(records));
    renameSync(`${file}.tmp`, file);
    records = { requests: [], upstream: [], pauses: [] };
  });
}
