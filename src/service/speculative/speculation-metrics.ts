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
 * The series of speculative decoding (registered by MetricsService, docs/speculative.md
 * "Metrics"), per tier pair ("edge>main"), and what each pair has measured across requests (acceptance,
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
    const series = metrics.speculation;
    this.draftTokens = series.draftTokens;
    this.verifySteps = series.verifySteps;
    this.requests = series.requests;
    this.speedup = series.speedup;
    this.acceptance = series.acceptance;
    this.k = series.k;
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
