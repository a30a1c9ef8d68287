import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request hot path, exposed through prom-client's Registry
 * in exactly its text format. prom-client's own `inc(labels)` / `observe(labels, v)` validate
 * and hash the label object on every call (a few hundred ns each, eight times per request);
 * here `labels(...values)` finds a series once, and callers that see the same label values
 * again (a tier, a route) keep the series and add to plain numbers.
 */

type MetricValues = {
  value: number;
  labels: Record<string, string | number>;
  /** Labels common to a histogram's bucket, sum and count lines (rendered after `le`). */
  sharedLabels?: Record<string, string>;
  metricName?: string;
}[];

/** The shape prom-client's Registry reads from every metric when it renders /metrics. */
interface RegistryView {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: MetricValues;
}

/** Series by label values, one nested Map level per label (no key string built per lookup). */
class SeriesTable<S> {
  private readonly root = new Map<string, unknown>();
  readonly all: { labels: Record<string, string>; series: S }[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly create: () => S,
  ) {}

  find(values: readonly string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new Error(`expected ${this.labelNames.length} label values (${this.labelNames.join(', ')})`);
    }
    let level = this.root;
    for (let i = 0; i < values.length - 1; i++) {
      const v = values[i]!;
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    const last = values.length === 0 ? '' : values[values.length - 1]!;
    let series = level.get(last) as S | undefined;
    if (series === undefined) {
      series = this.create();
      level.set(last, series);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      this.all.push({ labels, series });
    }
    return series;
  }

  /** Label values of an object, in label-name order; unknown label names are an error. */
  valuesOf(labels: Readonly<Record<string, string>>): string[] {
    for (const key in labels) {
      if (!this.labelNames.includes(key)) throw new Error(`unknown label "${key}"`);
    }
    return this.labelNames.map((name) => labels[name] ?? '');
  }
}

export interface CounterSeries {
  inc(value?: number): void;
}

export interface HistogramSeries {
  observe(value: number): void;
}

abstract class SeriesMetric<L extends string, S> {
  readonly aggregator = 'sum' as const;
  protected readonly table: SeriesTable<S>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    create: () => S,
  ) {
    this.table = new SeriesTable(labelNames, create);
  }

  /** The series for these label values, in `labelNames` order. Hold it where it repeats. */
  labels(...values: string[]): S {
    return this.table.find(values);
  }

  /**
   * Registry.resetMetrics: every series back to zero. Series are kept, not dropped as prom-client
   * does, because callers hold them.
   */
  reset(): void {
    for (const { series } of this.table.all) this.zero(series);
  }

  protected abstract zero(series: S): void;

  /** Adds this metric to a prom-client Registry, which renders it with the others. */
  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** A monotonic counter (Prometheus type `counter`). */
export class SeriesCounter<L extends string> extends SeriesMetric<L, CounterSeries & { value: number }> {
  readonly type = 'counter' as const;

  constructor(name: string, help: string, labelNames: readonly L[]) {
    super(name, help, labelNames, () => ({
      value: 0,
      inc(v = 1) {
        if (!(v >= 0) || !Number.isFinite(v)) throw new TypeError(`counter increment must be ≥ 0, got ${v}`);
        this.value += v;
      },
    }));
  }

  protected zero(series: { value: number }): void {
    series.value = 0;
  }

  /** Cold-path convenience with prom-client's signature. */
  inc(labels: Readonly<Record<L, string>>, value = 1): void {
    this.table.find(this.table.valuesOf(labels)).inc(value);
  }

  get(): RegistryView {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.table.all.map(({ labels, series }) => ({ labels, value: series.value })),
    };
  }
}

/** A histogram with fixed upper bounds (Prometheus type `histogram`, cumulative `le` buckets). */
export class SeriesHistogram<L extends string> extends SeriesMetric<
  L,
  HistogramSeries & { counts: Float64Array; sum: number; count: number }
> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    const bounds = [...buckets].sort((a, b) => a - b);
    super(name, help, labelNames, () => ({
      // One count per bound; values above the last bound count only in the total (+Inf).
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      observe(v: number) {
        if (!Number.isFinite(v)) throw new TypeError(`histogram value must be finite, got ${v}`);
        for (let i = 0; i < bounds.length; i++) {
          if (v <= bounds[i]!) {
            this.counts[i] = this.counts[i]! + 1;
            break;
          }
        }
        this.sum += v;
        this.count++;
      },
    }));
    this.bounds = bounds;
  }

  protected zero(series: { counts: Float64Array; sum: number; count: number }): void {
    series.counts.fill(0);
    series.sum = 0;
    series.count = 0;
  }

  /** Cold-path convenience with prom-client's signature. */
  observe(labels: Readonly<Record<L, string>>, value: number): void {
    this.table.find(this.table.valuesOf(labels)).observe(value);
  }

  get(): RegistryView {
    // Laid out as prom-client lays out its histograms, so /metrics reads the same line for line.
    const values: MetricValues = [];
    for (const { labels, series } of this.table.all) {
      let cumulative = 0;
      const bucket = `${this.name}_bucket`;
      this.bounds.forEach((le, i) => {
        cumulative += series.counts[i]!;
        values.push({ labels: { le }, sharedLabels: labels, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: series.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({
        labels: {},
        sharedLabels: labels,
        value: series.count,
        metricName: `${this.name}_count`,
      });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
