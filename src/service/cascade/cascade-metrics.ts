import type { Counter, Histogram } from 'prom-client';
import type { MetricsService } from '../../observability/metrics.js';

/** How a cascaded choice ran, for the `outcome` label (docs/cascade.md "Metrics"). */
export type CascadeOutcome =
  /** The first tier was confident: its answer was kept. */
  | 'kept'
  /** The first tier's probe was below the threshold: the request escalated. */
  | 'escalated'
  /** The first tier failed or refused before its answer was judged: the request escalated. */
  | 'first_failed';

/** The cascade's series, registered once per metrics registry. */
export interface CascadeMetrics {
  readonly requests: Counter<'cascade' | 'outcome'>;
  /** The probe's score, per judged choice. */
  readonly probe: Histogram<'cascade' | 'signal'>;
  /** Tokens the first tier generated for answers that were then escalated (paid for, not served). */
  readonly discarded: Counter<'cascade'>;
}

const byRegistry = new WeakMap<MetricsService, CascadeMetrics>();

export function cascadeMetrics(metrics: MetricsService): CascadeMetrics {
  let m = byRegistry.get(metrics);
  if (m === undefined) {
    m = {
      requests: metrics.counter({
        name: 'cascade_requests_total',
        help: 'Choices planned as a cascade ("first>>then"), by how they ran: kept, escalated, first_failed.',
        labelNames: ['cascade', 'outcome'],
      }),
      probe: metrics.histogram({
        name: 'cascade_probe_score',
        help: "The first tier's probe score per judged choice: its tokens' mean logprob (signal=mean_logprob) or smallest top-1/top-2 logprob gap (signal=min_margin).",
        labelNames: ['cascade', 'signal'],
        buckets: [-6, -4, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.1, 0.25, 0.5, 1, 2, 4, 8],
      }),
      discarded: metrics.counter({
        name: 'cascade_discarded_tokens_total',
        help: "Tokens the first tier generated for choices that escalated (the cascade's cost of a wrong guess).",
        labelNames: ['cascade'],
      }),
    };
    byRegistry.set(metrics, m);
  }
  return m;
}
