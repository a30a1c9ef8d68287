import type { RoutingConfig } from '../config/policies.js';
import { decide } from './decide.js';
import {
  planRoute,
  type NamedPolicy,
  type RequestFeatures,
  type TierProfile,
  type TierState,
} from './engine.js';
import type { RouteBudget, RoutePlan, RouteReasonCode } from './plan.js';
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
 * Replays recorded request features through the planning entry that routes live requests
 * (`decide`, src/routing/decide.ts), on an idle system (every tier ready, empty queues): what a candidate policy would choose, and what it
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
    if (modelTier === undefined && r.policy === undefined && selectsNone(input.routing, r, model)) {
      invalid += weight;
      reasons.invalid = (reasons.invalid ?? 0) + weight;
      continue;
    }
    const features = { promptTokens: r.prompt_tokens, maxTokens: r.max_tokens };
    let plan;
    try {
      // The planning entry live requests and explain use (decide.ts), on an idle system.
      plan = decide(
        {
          model,
          modelTier: modelTier ?? '',
          apiKey: r.api_key,
          options: {
            policy: r.policy,
            latencyBudgetMs: r.latency_budget_ms,
            accuracyFloor: r.accuracy_floor,
          },
          features,
        },
        { routing: input.routing, profiles: () => input.profiles, state: () => state },
      );
    } catch {
      // An unknown requested policy: the gateway would answer 400.
      invalid += weight;
      reasons.invalid = (reasons.invalid ?? 0) + weight;
      continue;
    }
    const code: RouteReasonCode = plan.code;
    reasons[code] = (reasons[code] ?? 0) + weight;
    policies[plan.policy] = (policies[plan.policy] ?? 0) + weight;
    // A static plan names its tier without assessing it: assessed here like a one-tier policy.
    const assessed =
      plan.code === 'static'
        ? assessStatic(plan.attempts[0]!.tier, plan.budget, features, input, state)
        : plan;
    const chosen = assessed.trace.find((v) => v.chosen);
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
    if (chosen.latencyMs <= plan.budget.latencyMs && chosen.accuracy >= plan.budget.accuracyFloor)
      metBoth += weight;
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

/** True when no policy would govern a request for `model` (so only the static table could serve it). */
function selectsNone(routing: RoutingConfig, r: TrafficRecord, model: string): boolean {
  return selectPolicy(routing, { requested: undefined, apiKey: r.api_key, model }) === undefined;
}

/** The static table's tier assessed by the engine like a one-tier best-effort policy. */
function assessStatic(
  tier: string,
  budget: RouteBudget,
  features: RequestFeatures,
  input: SimulationInput,
  state: Record<string, TierState>,
): RoutePlan {
  const policy: NamedPolicy = {
    name: 'none',
    tiers: [tier],
    objective: 'cheapest',
    fallback: [],
    costPer1kTokens: {},
    onInfeasible: 'best_effort',
  };
  return planRoute({
    features,
    policy,
    budget,
    profiles: input.profiles,
    state,
  });
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
