import type { Counter, Gauge, Histogram } from 'prom-client';
import type { MetricsService } from '../../observability/metrics.js';
import { PairStats } from './adaptive-k.js';

/** How a speculative request ran, for the `outcome` label. */
export type SpeculationOutcome =
  /** Drafted and verified to its end (or its client's stop). */
  | 'speculated'
  /** The verify tier was at its `stopAtLoad` when it started: plain decoding there. */
  | 'plain_saturated'
  /** A tier cannot keep sequences, a breaker is open or a tier had no free slot: plain decoding. */
  | 'plain_unavailable'
  /** Saturation reached mid-request: continued by plain decoding on the verify tier. */
  | 'handed_over_saturated'
  /** The draft tier failed: continued by plain decoding on the verify tier. */
  | 'handed_over_draft_failed'
  /** The verify tier failed: continued on the plan's fallbacks. */
  | 'handed_over_verify_failed';

/**
 * The metrics of speculative decoding (docs/speculative.md, metrics table),
 * per tier pair ("edge>main"), and what each pair has measured across requests (acceptance,
 * step costs: src/service/speculative/adaptive-k.ts). One per gateway's metrics registry.
 */
export class SpeculationMetrics {
  readonly draftTokens: Counter<'pair' | 'result'>;
  readonly verifySteps: Counter<'pair'>;
  readonly requests: Counter<'pair' | 'outcome'>;
  readonly speedup: Histogram<'pair'>;
  readonly acceptance: Gauge<'pair'>;
  readonly k: Gauge<'pair'>;
  private readonly pairs = new Map<string, PairStats>();

  constructor(metrics: MetricsService) {
    this.draftTokens = metrics.counter({
      name: 'speculative_draft_tokens_total',
      help: 'Draft tokens proposed by the draft tier and accepted by the verify tier, per tier pair.',
      labelNames: ['pair', 'result'],
    });
    this.verifySteps = metrics.counter({
      name: 'speculative_verify_steps_total',
      help: 'Verify passes (one forward pass over a draft) per tier pair.',
      labelNames: ['pair'],
    });
    this.requests = metrics.counter({
      name: 'speculative_requests_total',
      help: 'Choices planned speculatively, by how they ran.',
      labelNames: ['pair', 'outcome'],
    });
    this.speedup = metrics.histogram({
      name: 'speculative_speedup',
      help: 'Per speculated choice: tokens per second over what the verify tier alone reaches on the same sequence (its one-position pass).',
      labelNames: ['pair'],
      buckets: [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 6],
    });
    this.acceptance = metrics.gauge({
      name: 'speculative_acceptance_rate',
      help: 'Measured share of draft positions the verify tier accepts, per tier pair.',
      labelNames: ['pair'],
    });
    this.k = metrics.gauge({
      name: 'speculative_k',
      help: 'Draft tokens per verify step last chosen, per tier pair.',
      labelNames: ['pair'],
    });
  }

  /** What the pair has measured so far (created with the priors on first use). */
  pair(name: string): PairStats {
    let stats = this.pairs.get(name);
    if (stats === undefined) {
      stats = new PairStats();
      this.pairs.set(name, stats);
    }
    return stats;
  }
}

const byRegistry = new WeakMap<MetricsService, SpeculationMetrics>();

/** The gateway's speculation metrics and pair statistics: one set per metrics registry. */
export function speculationMetrics(metrics: MetricsService): SpeculationMetrics {
  let m = byRegistry.get(metrics);
  if (m === undefined) {
    m = new SpeculationMetrics(metrics);
    byRegistry.set(metrics, m);
  }
  return m;
}
