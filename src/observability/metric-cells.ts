import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the request path, exposed through prom-client's registry.
 *
 * prom-client's own `inc` and `observe` sort and hash the label object, validate every label name
 * and, for histograms, find the bucket through a number-keyed object, on every call: about 1-2 µs each
 * inside a busy gateway, ten of them per request. Here a label set leads to its cell through one Map
 * lookup per label, and the call adds to plain numbers. prom-client still renders the exposition:
 * the registry reads these metrics through `get()`, in the shape its own metrics return (a unit
 * test compares the text with prom-client's Counter and Histogram).
 *
 * Label values must already be bounded (ModeLabels, ModelLabels, fixed sets): there is one cell
 * per distinct label set and cells are never evicted, as in prom-client.
 */

type Labels<L extends string> = Readonly<Record<L, string>>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

interface Options<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registers: Registry[];
}

interface Entry<L extends string, C> {
  readonly labels: Labels<L>;
  readonly cell: C;
}

/** A level of the label trie: one Map per label, keyed by its value; the last level holds the entries. */
type Level<L extends string, C> = Map<string, Level<L, C> | Entry<L, C>>;

/**
 * Shared by both kinds: one cell per label set, found through a trie of Maps keyed by each label's
 * value in labelNames order. No key string is built per call: label values are mostly constant
 * strings whose hash V8 has already computed.
 */
abstract class CellMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly L[];
  private root: Level<L, C> = new Map();
  /** Every entry, in creation order (the order of the exposition, as in prom-client). */
  protected entries: Entry<L, C>[] = [];

  constructor(options: Options<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  /** Last in each subclass's constructor: an unlabelled metric exists (at 0) from the start, as prom-client's do. */
  protected register(registers: Registry[]): void {
    this.reset();
    // The registry only reads name and calls get(); the cast is to prom-client's union of its own classes.
    for (const registry of registers) registry.registerMetric(this as unknown as Metric);
  }

  protected abstract newCell(): C;

  protected cellFor(labels: Labels<L>): C {
    const names = this.labelNames;
    let level = this.root;
    for (let i = 0; i < names.length - 1; i++) {
      const value = labels[names[i] as L];
      let next = level.get(value) as Level<L, C> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const last = names.length === 0 ? '' : labels[names[names.length - 1] as L];
    const found = level.get(last) as Entry<L, C> | undefined;
    if (found !== undefined) return found.cell;
    const copy = {} as Record<L, string>;
    for (const name of names) copy[name] = labels[name];
    const entry = { labels: copy, cell: this.newCell() };
    level.set(last, entry);
    this.entries.push(entry);
    return entry.cell;
  }

  /** Back to the state after construction (tests). */
  reset(): void {
    this.root = new Map();
    this.entries = [];
    if (this.labelNames.length === 0) this.cellFor({} as Labels<L>);
  }
}

/** One series of a CellCounter, its label set resolved once (`CellCounter.labels`): valid until the metric's reset(). */
export class CounterSeries {
  constructor(
    private readonly name: string,
    private readonly cell: { value: number },
  ) {}

  inc(value = 1): void {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${this.name}: a counter only grows by a finite amount, not ${value}`);
    this.cell.value += value;
  }
}

export class CellCounter<L extends string = never> extends CellMetric<L, { value: number }> {
  readonly type = 'counter';
  readonly aggregator = 'sum';

  constructor(options: Options<L>) {
    super(options);
    this.register(options.registers);
  }

  protected newCell(): { value: number } {
    return { value: 0 };
  }

  inc(labels: Labels<L>, value = 1): void {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${this.name}: a counter only grows by a finite amount, not ${value}`);
    this.cellFor(labels).value += value;
  }

  /**
   * The series of `labels`, for a caller that adds to it again and again: no look-up per call. The
   * series appears in the exposition (at 0) from this call on, so resolve it when it first counts.
   */
  labels(labels: Labels<L>): CounterSeries {
    return new CounterSeries(this.name, this.cellFor(labels));
  }

  get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.entries) values.push({ labels: { ...labels }, value: cell.value });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

function observeInto(name: string, bounds: Float64Array, cell: HistogramCell, value: number): void {
  if (!Number.isFinite(value)) throw new RangeError(`${name}: not a finite observation: ${value}`);
  let i = 0;
  while (i < bounds.length && value > (bounds[i] as number)) i++;
  cell.counts[i] = (cell.counts[i] ?? 0) + 1;
  cell.sum += value;
  cell.count++;
}

/** One series of a CellHistogram, its label set resolved once (`CellHistogram.labels`): valid until the metric's reset(). */
export class HistogramSeries {
  constructor(
    private readonly name: string,
    private readonly bounds: Float64Array,
    private readonly cell: HistogramCell,
  ) {}

  observe(value: number): void {
    observeInto(this.name, this.bounds, this.cell, value);
  }
}

interface HistogramCell {
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class CellHistogram<L extends string = never> extends CellMetric<L, HistogramCell> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly bounds: Float64Array;

  constructor(options: Options<L> & { buckets: readonly number[] }) {
    super(options);
    this.bounds = Float64Array.from(options.buckets);
    if (this.bounds.some((b, i) => i > 0 && b <= (this.bounds[i - 1] ?? -Infinity))) throw new RangeError(`${options.name}: buckets must increase`);
    this.register(options.registers);
  }

  protected newCell(): HistogramCell {
    return { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }

  observe(labels: Labels<L>, value: number): void {
    observeInto(this.name, this.bounds, this.cellFor(labels), value);
  }

  /** The series of `labels`, resolved once (see CellCounter.labels). */
  labels(labels: Labels<L>): HistogramSeries {
    return new HistogramSeries(this.name, this.bounds, this.cellFor(labels));
  }


  get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, cell } of this.entries) {
      // Cumulative buckets, `le` first (where prom-client's own histograms print it), then _sum and _count.
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i] as number;
        values.push({ labels: { le: this.bounds[i] as number, ...labels }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: cell.count, metricName: bucket });
      values.push({ labels: { ...labels }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: cell.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
