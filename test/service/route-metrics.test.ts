// Budget misses name a tier that served the request, not the routed one: after a failover or an
// overflow another tier answered (src/service/route-metrics.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsService } from '../../src/observability/metrics.js';
import { fixedPlan } from '../../src/routing/engine.js';
import { RouteMetrics } from '../../src/service/route-metrics.js';

const ACCURACY: Record<string, number> = { edge: 0.99, main: 1, fallback: 1 };

test('budget misses are counted on the tiers that served: the last for latency, the least accurate for accuracy', async () => {
  const metrics = new MetricsService({ defaultMetrics: false });
  const route = new RouteMetrics(metrics);
  const plan = {
    ...fixedPlan('main', 'p', 'cheapest', 'override', { latencyMs: 100, accuracyFloor: 0.995 }),
  };
  // Routed to main, overflowed to edge, which served late and below the floor.
  route.ended(plan, ['edge'], 150, (t) => ACCURACY[t]!);
  // Continued from edge on main: the least accurate part is still edge's; main ended it late.
  route.ended(plan, ['edge', 'main'], 150, (t) => ACCURACY[t]!);
  // Served by main as routed, on time: no miss.
  route.ended(plan, ['main'], 50, (t) => ACCURACY[t]!);
  const text = await metrics.registry.metrics();
  const misses = text.split('\n').filter((l) => l.startsWith('tiergate_route_budget_misses_total{'));
  assert.deepEqual(misses.sort(), [
    'tiergate_route_budget_misses_total{policy="p",tier="edge",budget="accuracy"} 2',
    'tiergate_route_budget_misses_total{policy="p",tier="edge",budget="latency"} 1',
    'tiergate_route_budget_misses_total{policy="p",tier="main",budget="latency"} 1',
  ]);
});
