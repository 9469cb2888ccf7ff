import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the request path, exposed through prom-client's registry.
 *
 * prom-client's own `inc` and `observe` sort and hash the label object, validate every label name
 * and, for histograms, find the bucket through a number-keyed object, on every call: about 1-2 µs each
 * inside a busy gateway, ten of them per request. Here a label set is resolved to a cell once (a Map
 * lookup by the joined label values); each call after that adds to plain numbers. prom-client still
 * renders the exposition: the registry reads these metrics through `get()`, in the shape its own
 * metrics return (a unit test compares the text with prom-client's Counter and Histogram).
 *
 * Label values must already be bounded (BoundedLabel, ModelLabels, fixed sets): there is one cell
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

/** Shared by both kinds: one cell per label set, keyed by the values joined in labelNames order. */
abstract class CellMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly L[];
  protected cells = new Map<string, { labels: Labels<L>; cell: C }>();

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
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    const found = this.cells.get(key);
    if (found !== undefined) return found.cell;
    const copy = {} as Record<L, string>;
    for (const name of this.labelNames) copy[name] = labels[name];
    const cell = this.newCell();
    this.cells.set(key, { labels: copy, cell });
    return cell;
  }

  /** Back to the state after construction (tests). */
  reset(): void {
    this.cells = new Map();
    if (this.labelNames.length === 0) this.cellFor({} as Labels<L>);
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

  get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) values.push({ labels: { ...labels }, value: cell.value });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
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
    if (!Number.isFinite(value)) throw new RangeError(`${this.name}: not a finite observation: ${value}`);
    const cell = this.cellFor(labels);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    cell.counts[i] = (cell.counts[i] ?? 0) + 1;
    cell.sum += value;
    cell.count++;
  }

  get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, cell } of this.cells.values()) {
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
