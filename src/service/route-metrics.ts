import type { MetricsService } from '../observability/metrics.js';
import type { CounterSeries } from '../observability/series-metrics.js';
import type { RoutePlan } from '../routing/plan.js';

/** Route decisions and budget misses, registered once in the gateway's own registry. */
export class RouteMetrics {
  private readonly decisions;
  private readonly budgetMisses;

  constructor(metrics: MetricsService) {
    this.decisions = metrics.seriesCounter({
      name: 'route_decisions_total',
      help: 'Routing decisions by policy, chosen tier and reason code.',
      labelNames: ['policy', 'tier', 'reason'],
    });
    this.budgetMisses = metrics.counter({
      name: 'route_budget_misses_total',
      help: 'Requests that missed their latency budget or were served below their accuracy floor.',
      labelNames: ['policy', 'tier', 'budget'],
    });
  }

  /** One decision (a rejected plan included), by policy, first tier and reason code. */
  decided(plan: RoutePlan): void {
    const series: CounterSeries = this.decisions.labels(
      plan.policy,
      plan.attempts[0]?.tier ?? 'none',
      plan.code,
    );
    series.inc();
  }

  /**
   * A request that ended: did it miss the latency budget, or run below the accuracy floor? The
   * tier's accuracy is looked up only for a request a policy governs.
   */
  ended(plan: RoutePlan, tier: string, elapsedMs: number, accuracyOf: (tier: string) => number): void {
    if (plan.policy === 'none') return;
    const accuracy = accuracyOf(tier);
    if (elapsedMs > plan.budget.latencyMs)
      this.budgetMisses.inc({ policy: plan.policy, tier, budget: 'latency' });
    if (accuracy < plan.budget.accuracyFloor)
      this.budgetMisses.inc({ policy: plan.policy, tier, budget: 'accuracy' });
  }
}
