import type { RoutingConfig } from '../config/policies.js';
import { planRoute, type NamedPolicy, type TierProfile, type TierState } from './engine.js';
import type { RouteReasonCode } from './plan.js';
import { NO_BUDGET_MS } from './router.js';
import { selectPolicy } from './select-policy.js';
import type { TrafficRecord } from './traffic.js';

export interface SimulationInput {
  readonly routing: RoutingConfig;
  readonly traffic: readonly TrafficRecord[];
  readonly profiles: Readonly<Record<string, TierProfile>>;
  /** Served model name → its configured tier (the static table, for requests no policy governs). */
  readonly modelTiers: Readonly<Record<string, string>>;
  /** Model assumed for records that name none. */
  readonly defaultModel: string;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

export interface SimulationReport {
  readonly requests: number;
  readonly served: number;
  readonly rejected: number;
  /** Requests naming an unknown policy or model. */
  readonly invalid: number;
  readonly tierMix: Readonly<Record<string, { readonly requests: number; readonly share: number }>>;
  readonly reasons: Readonly<Partial<Record<RouteReasonCode | 'invalid', number>>>;
  readonly policies: Readonly<Record<string, number>>;
  /** Predicted end-to-end latency of served requests, ms. */
  readonly latencyMs: Percentiles;
  readonly ttftMs: Percentiles;
  /** Mean accuracy (relative to FP32) of served requests. */
  readonly expectedAccuracy: number;
  readonly totalCost: number;
  readonly costPerRequest: number;
  /** Share of all requests predicted to meet both their latency budget and accuracy floor. */
  readonly metBothShare: number;
}

/**
 * Replays recorded request features through the same engine that routes live requests, on an
 * idle system (every tier ready, empty queues): what a candidate policy would choose, and what it
 * is predicted to cost in latency, accuracy and money. Queueing under load is not simulated.
 */
export function simulate(input: SimulationInput): SimulationReport {
  const state: Record<string, TierState> = {};
  for (const tier of Object.keys(input.profiles))
    state[tier] = { ready: true, breakerOpen: false, queueDepth: 0, capacity: 1 };
  const mix: Record<string, number> = {};
  const reasons: Partial<Record<RouteReasonCode | 'invalid', number>> = {};
  const policies: Record<string, number> = {};
  const latencies: [number, number][] = [];
  const ttfts: [number, number][] = [];
  let requests = 0;
  let served = 0;
  let rejected = 0;
  let invalid = 0;
  let accuracySum = 0;
  let cost = 0;
  let metBoth = 0;
  for (const r of input.traffic) {
    const weight = r.count ?? 1;
    requests += weight;
    const model = r.model ?? input.defaultModel;
    const modelTier = input.modelTiers[model];
    let selected;
    try {
      selected = selectPolicy(input.routing, { requested: r.policy, apiKey: r.api_key, model });
    } catch {
      // An unknown requested policy: counted as invalid below, as the gateway would answer 400.
      selected = undefined;
    }
    if (
      (r.policy !== undefined && selected === undefined) ||
      (selected === undefined && modelTier === undefined)
    ) {
      invalid += weight;
      reasons.invalid = (reasons.invalid ?? 0) + weight;
      continue;
    }
    // No policy: the static table's tier, assessed like a one-tier best-effort policy.
    const policy: NamedPolicy =
      selected === undefined
        ? {
            name: 'none',
            tiers: [modelTier!],
            objective: 'cheapest',
            fallback: [],
            costPer1kTokens: {},
            onInfeasible: 'best_effort',
          }
        : { name: selected.name, ...selected.policy };
    const budget = {
      latencyMs: r.latency_budget_ms ?? selected?.policy.latencyBudgetMs ?? NO_BUDGET_MS,
      accuracyFloor: r.accuracy_floor ?? selected?.policy.accuracyFloor ?? 0,
    };
    const plan = planRoute({
      features: { promptTokens: r.prompt_tokens, maxTokens: r.max_tokens },
      policy,
      budget,
      profiles: input.profiles,
      state,
    });
    const code: RouteReasonCode = selected === undefined ? 'static' : plan.code;
    reasons[code] = (reasons[code] ?? 0) + weight;
    policies[plan.policy] = (policies[plan.policy] ?? 0) + weight;
    const chosen = plan.trace.find((v) => v.chosen);
    if (plan.rejected !== undefined || chosen === undefined) {
      rejected += weight;
      continue;
    }
    served += weight;
    mix[chosen.tier] = (mix[chosen.tier] ?? 0) + weight;
    latencies.push([chosen.latencyMs, weight]);
    ttfts.push([chosen.ttftMs, weight]);
    accuracySum += chosen.accuracy * weight;
    cost += chosen.cost * weight;
    if (chosen.latencyMs <= budget.latencyMs && chosen.accuracy >= budget.accuracyFloor) metBoth += weight;
  }
  const tierMix: Record<string, { requests: number; share: number }> = {};
  for (const [tier, n] of Object.entries(mix).sort((a, b) => b[1] - a[1]))
    tierMix[tier] = { requests: n, share: n / requests };
  return {
    requests,
    served,
    rejected,
    invalid,
    tierMix,
    reasons,
    policies,
    latencyMs: percentiles(latencies),
    ttftMs: percentiles(ttfts),
    expectedAccuracy: served > 0 ? accuracySum / served : 0,
    totalCost: cost,
    costPerRequest: served > 0 ? cost / served : 0,
    metBothShare: requests > 0 ? metBoth / requests : 0,
  };
}

/** Weighted nearest-rank percentiles. */
function percentiles(samples: [number, number][]): Percentiles {
  if (samples.length === 0) return { p50: 0, p95: 0, p99: 0 };
  const sorted = [...samples].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((s, [, w]) => s + w, 0);
  const at = (q: number): number => {
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (const [v, w] of sorted) {
      seen += w;
      if (seen >= rank) return v;
    }
    return sorted[sorted.length - 1]![0];
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** The report as an aligned text block for a terminal. */
export function formatReport(name: string, r: SimulationReport): string {
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
  const lines = [
    `policy file: ${name}`,
    `requests: ${r.requests}  served: ${r.served}  rejected: ${r.rejected}  invalid: ${r.invalid}`,
    `tier mix: ${
      Object.entries(r.tierMix)
        .map(([t, m]) => `${t} ${pct(m.share)}`)
        .join(', ') || '(none)'
    }`,
    `reasons: ${Object.entries(r.reasons)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ')}`,
    `predicted latency ms: p50 ${r.latencyMs.p50}  p95 ${r.latencyMs.p95}  p99 ${r.latencyMs.p99}`,
    `predicted ttft ms:    p50 ${r.ttftMs.p50}  p95 ${r.ttftMs.p95}  p99 ${r.ttftMs.p99}`,
    `expected accuracy (vs FP32): ${r.expectedAccuracy.toFixed(4)}`,
    `cost: total ${round(r.totalCost)}  per request ${round(r.costPerRequest)}`,
    `met both budgets: ${pct(r.metBothShare)}`,
  ];
  return `${lines.join('\n')}\n`;
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
