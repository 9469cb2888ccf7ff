import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { CellCounter, CellHistogram } from '../../src/observability/metric-cells.js';

/**
 * Differential: the same calls into prom-client's own Counter and Histogram and into the cell
 * metrics must render the same exposition text (what Prometheus scrapes and promtool checks).
 */
const BUCKETS = [0.001, 0.01, 0.1, 1, 10];
const LABEL_SETS = [
  { method: 'POST', route: '/v1/messages', status: '200' },
  { method: 'GET', route: '/v1/models', status: '404' },
  // Shares all but the last label with the first set (one branch of the label trie).
  { method: 'POST', route: '/v1/messages', status: '429' },
  // Escaping: a quote, a backslash and a newline in a value.
  { method: 'POST', route: 'a"b\\c\nd', status: '499' },
];
// Bucket edges exactly, between them, below the first and past the last.
const VALUES = [0, 0.001, 0.0010001, 0.05, 1, 3.5, 10, 10.5, 1e6];

function both(): { ours: Registry; theirs: Registry; cells: { counter: CellCounter<'method' | 'route' | 'status'>; histogram: CellHistogram<'method' | 'route' | 'status'>; bare: CellHistogram; total: CellCounter }; prom: { counter: Counter<'method' | 'route' | 'status'>; histogram: Histogram<'method' | 'route' | 'status'>; bare: Histogram; total: Counter } } {
  const ours = new Registry();
  const theirs = new Registry();
  const labelNames = ['method', 'route', 'status'] as const;
  return {
    ours,
    theirs,
    cells: {
      counter: new CellCounter({ name: 'requests_total', help: 'Requests', labelNames, registers: [ours] }),
      histogram: new CellHistogram({ name: 'request_seconds', help: 'Request time', labelNames, buckets: BUCKETS, registers: [ours] }),
      bare: new CellHistogram({ name: 'overhead_seconds', help: 'Overhead', buckets: BUCKETS, registers: [ours] }),
      total: new CellCounter({ name: 'events_total', help: 'Events', registers: [ours] }),
    },
    prom: {
      counter: new Counter({ name: 'requests_total', help: 'Requests', labelNames, registers: [theirs] }),
      histogram: new Histogram({ name: 'request_seconds', help: 'Request time', labelNames, buckets: BUCKETS, registers: [theirs] }),
      bare: new Histogram({ name: 'overhead_seconds', help: 'Overhead', buckets: BUCKETS, registers: [theirs] }),
      total: new Counter({ name: 'events_total', help: 'Events', registers: [theirs] }),
    },
  };
}

describe('cell metrics', () => {
  test('render exactly what prom-client renders, before any call and after many', async () => {
    const m = both();
    assert.equal(await m.ours.metrics(), await m.theirs.metrics(), 'before any call: unlabelled metrics at 0, labelled ones absent');
    for (const [i, value] of VALUES.entries()) {
      for (const labels of LABEL_SETS) {
        m.cells.counter.inc(labels, i + 1);
        m.prom.counter.inc(labels, i + 1);
        m.cells.histogram.observe(labels, value);
        m.prom.histogram.observe(labels, value);
      }
      m.cells.bare.observe({}, value);
      m.prom.bare.observe(value);
      m.cells.total.inc({});
      m.prom.total.inc();
    }
    const text = await m.ours.metrics();
    assert.equal(text, await m.theirs.metrics());
    assert.match(text, /request_seconds_bucket\{le="0.001",method="POST",route="\/v1\/messages",status="200"\} 2\n/);
    assert.match(text, /overhead_seconds_count 9\n/);
  });

  test('get() gives the values prom-client gives (what tests and collectors read)', async () => {
    const m = both();
    for (const labels of LABEL_SETS) {
      m.cells.counter.inc(labels, 2);
      m.prom.counter.inc(labels, 2);
    }
    const ours = (await m.cells.counter.get()).values.map((v) => [v.labels, v.value]);
    const theirs = (await m.prom.counter.get()).values.map((v) => [v.labels, v.value]);
    assert.deepEqual(ours, theirs);
  });

  test('across workers, cell metrics aggregate (AggregatorRegistry, as WORKERS>1 scrapes do) to what one registry that saw every call renders', async () => {
    // Two workers: the first sees the first half of the label sets and values, the second the rest,
    // overlapping in one label set; prom-client's own metrics in one registry see all of it.
    // Binary fractions, so a sum of partial sums is exactly the sum (bucket edges 1 and 10 included).
    const values = [0, 2 ** -10, 2 ** -7, 2 ** -4, 0.5, 1, 3.5, 10, 10.5, 2 ** 20];
    const workers = [both(), both()];
    const single = both();
    for (const [i, value] of values.entries()) {
      const worker = workers[i % 2] as ReturnType<typeof both>;
      for (const labels of i % 2 === 0 ? LABEL_SETS.slice(0, 3) : LABEL_SETS.slice(2)) {
        worker.cells.counter.inc(labels, i + 1);
        worker.cells.histogram.observe(labels, value);
      }
      worker.cells.bare.observe({}, value);
      worker.cells.total.inc({});
    }
    // The same calls in the order the aggregate lists label sets: the first worker's, then the second's new ones.
    for (const part of [0, 1]) {
      for (const [i, value] of values.entries()) {
        if (i % 2 !== part) continue;
        for (const labels of part === 0 ? LABEL_SETS.slice(0, 3) : LABEL_SETS.slice(2)) {
          single.prom.counter.inc(labels, i + 1);
          single.prom.histogram.observe(labels, value);
        }
        single.prom.bare.observe(value);
        single.prom.total.inc();
      }
    }
    // Over IPC the registries travel as JSON: the aggregate must not depend on object identity.
    const json = await Promise.all(workers.map(async (w) => JSON.parse(JSON.stringify(await w.ours.getMetricsAsJSON())) as object));
    const aggregated = await AggregatorRegistry.aggregate(json).metrics();
    assert.equal(aggregated, await single.theirs.metrics());
    assert.match(aggregated, /overhead_seconds_count 10\n/);
    assert.match(aggregated, /events_total 10\n/);
  });

  test('a counter refuses to go down or by a non-finite amount, like prom-client', () => {
    const m = both();
    assert.throws(() => m.cells.total.inc({}, -1), RangeError);
    assert.throws(() => m.cells.total.inc({}, Number.NaN), RangeError);
    assert.throws(() => m.cells.bare.observe({}, Number.POSITIVE_INFINITY), RangeError);
  });

  test('series resolved once (labels()) render what prom-client renders for the same calls, and exist only from their first count', async () => {
    const m = both();
    const series = LABEL_SETS.map((labels) => ({ labels, counter: m.cells.counter.labels(labels), histogram: m.cells.histogram.labels(labels) }));
    for (const [i, value] of VALUES.entries()) {
      for (const { labels, counter, histogram } of series) {
        counter.inc(i + 1);
        m.prom.counter.inc(labels, i + 1);
        histogram.observe(value);
        m.prom.histogram.observe(labels, value);
      }
    }
    assert.equal(await m.ours.metrics(), await m.theirs.metrics());
    // A series resolved through inc() after labels() is the same cell: one series, both counts.
    const first = LABEL_SETS[0] as (typeof LABEL_SETS)[number];
    m.cells.counter.inc(first, 5);
    m.prom.counter.inc(first, 5);
    assert.equal(await m.ours.metrics(), await m.theirs.metrics());
    assert.throws(() => m.cells.counter.labels(first).inc(-1), RangeError);
    assert.throws(() => m.cells.histogram.labels(first).observe(Number.NaN), RangeError);
  });
});
