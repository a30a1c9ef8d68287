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
   * A request that ended: did it miss the latency budget, or run below the accuracy floor? Judged
   * on the tiers that served it (`servedBy`, in order; the routed tier when none did), not the
   * routed one: after a failover or an overflow another tier answered. The latency miss is the
   * last serving tier's, the accuracy miss the least accurate one's. The tiers' accuracy is
   * looked up only for a request a policy governs.
   */
  ended(
    plan: RoutePlan,
    servedBy: readonly string[],
    elapsedMs: number,
    accuracyOf: (tier: string) => number,
  ): void {
    if (plan.policy === 'none' || servedBy.length === 0) return;
    if (elapsedMs > plan.budget.latencyMs)
      this.budgetMisses.inc({ policy: plan.policy, tier: servedBy.at(-1)!, budget: 'latency' });
    let worst = servedBy[0]!;
    let accuracy = accuracyOf(worst);
    for (let i = 1; i < servedBy.length; i++) {
      const a = accuracyOf(servedBy[i]!);
      if (a < accuracy) [worst, accuracy] = [servedBy[i]!, a];
    }
    if (accuracy < plan.budget.accuracyFloor)
      this.budgetMisses.inc({ policy: plan.policy, tier: worst, budget: 'accuracy' });
  }
}
