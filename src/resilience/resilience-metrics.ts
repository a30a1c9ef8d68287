import type { Counter, Gauge } from 'prom-client';
import type { MetricsService } from '../observability/metrics.js';
import type { SeriesCounter } from '../observability/series-metrics.js';
import type { BreakerState } from './tier-breaker.js';

/** Numeric breaker state for the gauge (0 closed, 1 half-open, 2 open: higher is worse). */
export const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The resilience layer's series, registered in the app's MetricsService (names get the
 * tiergate_ prefix). opossum-prometheus cannot be used (it pins prom-client 12), so breaker
 * events are bound here by hand.
 */
export class ResilienceMetrics {
  readonly breakerState: Gauge<'tier'>;
  readonly breakerEvents: SeriesCounter<'tier' | 'event'>;
  readonly queueDepth: Gauge<'tier'>;
  readonly admitted: Gauge<'tier'>;
  readonly shed: Counter<'tier' | 'reason'>;
  readonly retries: Counter<'from' | 'tier' | 'result'>;
  readonly overflow: Counter<'from' | 'to'>;
  readonly fallbacks: Counter<'from' | 'to' | 'cause' | 'stage'>;
  readonly faults: Counter<'tier' | 'fault'>;
  readonly configReloads: Counter<'result'>;

  constructor(
    metrics: MetricsService,
    /**
     * The tiers' admission state, read when /metrics is scraped: queue depth and active streams
     * change twice per request, and a gauge update per change was a visible share of a request.
     */
    admission: () => Iterable<{
      readonly tier: string;
      readonly queued: number;
      readonly active: number;
    }> = () => [],
  ) {
    this.breakerState = metrics.gauge({
      name: 'breaker_state',
      help: 'Circuit breaker state per tier: 0 closed, 1 half-open, 2 open.',
      labelNames: ['tier'],
    });
    this.breakerEvents = metrics.seriesCounter({
      name: 'breaker_events_total',
      help: 'Circuit breaker events per tier: open, half_open, close, success, failure, reject.',
      labelNames: ['tier', 'event'],
    });
    this.queueDepth = metrics.gauge({
      name: 'admission_queue_depth',
      help: 'Requests waiting for a slot on the tier.',
      labelNames: ['tier'],
      collect() {
        for (const a of admission()) this.set({ tier: a.tier }, a.queued);
      },
    });
    this.admitted = metrics.gauge({
      name: 'admission_active',
      help: 'Streams holding an admission slot on the tier.',
      labelNames: ['tier'],
      collect() {
        for (const a of admission()) this.set({ tier: a.tier }, a.active);
      },
    });
    this.shed = metrics.counter({
      name: 'shed_total',
      help: 'Requests shed by admission control, by reason (queue_full = 429, deadline = 503).',
      labelNames: ['tier', 'reason'],
    });
    this.retries = metrics.counter({
      name: 'retries_total',
      help: 'Retries before the first token, by the failed tier whose budget pays (from), target tier and result (attempted, budget_exhausted).',
      labelNames: ['from', 'tier', 'result'],
    });
    this.overflow = metrics.counter({
      name: 'overflow_total',
      help: 'Requests refused by a tier\'s admission (from) and taken by a later tier of their plan (to); to="none" when no tier could take them (shed).',
      labelNames: ['from', 'to'],
    });
    this.fallbacks = metrics.counter({
      name: 'fallbacks_total',
      help: 'Moves from one tier to the next, by cause and stage (before_first_token, mid_stream).',
      labelNames: ['from', 'to', 'cause', 'stage'],
    });
    this.faults = metrics.counter({
      name: 'faults_injected_total',
      help: 'Faults injected by config, by tier and kind.',
      labelNames: ['tier', 'fault'],
    });
    this.configReloads = metrics.counter({
      name: 'config_reloads_total',
      help: 'Configuration reloads by result (applied, rejected).',
      labelNames: ['result'],
    });
  }
}
