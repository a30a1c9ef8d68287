import type { Gauge } from 'prom-client';
import type { MetricsService } from '../observability/metrics.js';
import type { CounterSeries, SeriesCounter } from '../observability/series-metrics.js';

/** Which of a key's limits refused a request or ended a stream early. */
export type LimitName =
  'requests_per_minute' | 'tokens_per_minute' | 'concurrent_streams' | 'budget' | 'store';

/** One key's usage on this replica since it started (the admin endpoint's per-key totals). */
export interface KeyTotals {
  requests: number;
  rejected: Partial<Record<LimitName, number>>;
  inputTokens: number;
  outputTokens: number;
  /** Σ tokens × the routing policy's costPer1kTokens / 1000 of the tier that handled them. */
  spend: number;
  /** Generations a limit ended before their end (finish_reason `length`). */
  truncated: number;
  /** Tokens beyond a soft budget. */
  overBudgetTokens: number;
}

interface LabelSeries {
  readonly admitted: CounterSeries;
  readonly input: CounterSeries;
  readonly output: CounterSeries;
  readonly spend: CounterSeries;
}

/**
 * Usage per key: totals in this process for the admin endpoint, and Prometheus series summed
 * over keys. Key names appear as the `key` label only for keys configured with `metricsLabel`
 * (the rest share `other`), so the series stay few however many keys there are.
 */
export class KeyUsage {
  private readonly totals = new Map<string, KeyTotals>();
  private readonly series = new Map<string, LabelSeries>();
  private readonly requests: SeriesCounter<'key' | 'outcome'>;
  private readonly tokens: SeriesCounter<'key' | 'type'>;
  private readonly spendTotal: SeriesCounter<'key'>;
  private readonly rejections: SeriesCounter<'key' | 'limit'>;
  private readonly truncations: SeriesCounter<'key' | 'limit'>;
  private readonly overBudget: SeriesCounter<'key'>;
  readonly storeErrors: SeriesCounter<'store' | 'mode'>;
  readonly storeUp: Gauge<'store'>;

  constructor(metrics: MetricsService, storeUp: () => { store: string; up: boolean }) {
    this.requests = metrics.seriesCounter({
      name: 'key_requests_total',
      help: 'Generation requests per API key (the key label only for keys with metricsLabel, else "other"), by outcome (admitted, rate_limited, quota_exceeded).',
      labelNames: ['key', 'outcome'],
    });
    this.tokens = metrics.seriesCounter({
      name: 'key_tokens_total',
      help: 'Tokens per API key by type (input: prompt, output: generated).',
      labelNames: ['key', 'type'],
    });
    this.spendTotal = metrics.seriesCounter({
      name: 'key_spend_total',
      help: "Spend per API key at the routing policies' costPer1kTokens, in the policies' unit.",
      labelNames: ['key'],
    });
    this.rejections = metrics.seriesCounter({
      name: 'limit_rejections_total',
      help: 'Requests refused by a key limit, by the limit.',
      labelNames: ['key', 'limit'],
    });
    this.truncations = metrics.seriesCounter({
      name: 'limit_truncations_total',
      help: 'Generations a key limit ended early (finish_reason length), by the limit.',
      labelNames: ['key', 'limit'],
    });
    this.overBudget = metrics.seriesCounter({
      name: 'budget_overrun_tokens_total',
      help: 'Tokens used beyond a soft budget.',
      labelNames: ['key'],
    });
    this.storeErrors = metrics.seriesCounter({
      name: 'limit_store_errors_total',
      help: 'Limit checks the store could not answer, by store and by what was done (open: admitted, closed: refused).',
      labelNames: ['store', 'mode'],
    });
    this.storeUp = metrics.gauge({
      name: 'limit_store_up',
      help: '1 when the key limits store answers.',
      labelNames: ['store'],
      collect() {
        const s = storeUp();
        this.set({ store: s.store }, s.up ? 1 : 0);
      },
    });
  }

  admitted(key: string, label: string): void {
    this.of(key).requests++;
    this.labels(label).admitted.inc();
  }

  rejected(key: string, label: string, limit: LimitName): void {
    const t = this.of(key);
    t.rejected[limit] = (t.rejected[limit] ?? 0) + 1;
    this.requests.inc({ key: label, outcome: limit === 'budget' ? 'quota_exceeded' : 'rate_limited' });
    this.rejections.inc({ key: label, limit });
  }

  used(key: string, label: string, input: number, output: number, spend: number): void {
    const t = this.of(key);
    t.inputTokens += input;
    t.outputTokens += output;
    t.spend += spend;
    const s = this.labels(label);
    if (input > 0) s.input.inc(input);
    if (output > 0) s.output.inc(output);
    if (spend > 0) s.spend.inc(spend);
  }

  truncated(key: string, label: string, limit: LimitName): void {
    this.of(key).truncated++;
    this.truncations.inc({ key: label, limit });
  }

  overrun(key: string, label: string, tokens: number): void {
    this.of(key).overBudgetTokens += tokens;
    this.overBudget.inc({ key: label }, tokens);
  }

  snapshot(): Record<string, KeyTotals> {
    const out: Record<string, KeyTotals> = {};
    for (const [key, t] of this.totals) out[key] = { ...t, rejected: { ...t.rejected } };
    return out;
  }

  private of(key: string): KeyTotals {
    let t = this.totals.get(key);
    if (t === undefined) {
      t = {
        requests: 0,
        rejected: {},
        inputTokens: 0,
        outputTokens: 0,
        spend: 0,
        truncated: 0,
        overBudgetTokens: 0,
      };
      this.totals.set(key, t);
    }
    return t;
  }

  private labels(label: string): LabelSeries {
    let s = this.series.get(label);
    if (s === undefined) {
      s = {
        admitted: this.requests.labels(label, 'admitted'),
        input: this.tokens.labels(label, 'input'),
        output: this.tokens.labels(label, 'output'),
        spend: this.spendTotal.labels(label),
      };
      this.series.set(label, s);
    }
    return s;
  }
}
