import type { PolicyConfig } from '../config/policies.js';
import type {
  CascadeRoute,
  Objective,
  RouteAttempt,
  RouteBudget,
  RoutePlan,
  RouteReasonCode,
  SkipCause,
  TierVerdict,
} from './plan.js';
import { cascadeRoute } from './cascade-route.js';
import { pairPlan, speculativeRoute, type PairPlan } from './speculative-route.js';

/** What the engine knows about a request before running it. */
export interface RequestFeatures {
  readonly promptTokens: number;
  /** Upper bound on generated tokens; latency is predicted for all of them (worst case). */
  readonly maxTokens: number;
}

/** A tier's predicted latency terms (already at the configured quantile) and accuracy. */
export interface TierProfile {
  readonly ttftMs: number;
  readonly ttftPerPromptTokenMs: number;
  /** Added to ttftMs per other request running on the tier, and per other busy tier (learned). */
  readonly ttftPerStreamMs?: number | undefined;
  readonly ttftPerBusyTierMs?: number | undefined;
  /** Per output token for a request running alone on the tier. */
  readonly perOutputTokenMs: number;
  /**
   * Added per output token for each other request the tier runs at once (the latency model's
   * fit; absent or 0: not learned, and the queue model's throughput stands for it).
   */
  readonly perOutputTokenPerStreamMs?: number | undefined;
  /** Added per output token for each other tier busy at the time (they share the cores). */
  readonly perOutputTokenPerBusyTierMs?: number | undefined;
  readonly queueMs: number;
  /** Relative to the FP32 reference, in (0, 1]. */
  readonly accuracy: number;
}

export interface TierState {
  readonly ready: boolean;
  readonly breakerOpen: boolean;
  /** Requests currently routed to the tier (running or queued). */
  readonly queueDepth: number;
  /** Requests the tier runs at once. */
  readonly capacity: number;
  /**
   * Single streams' worth of work the tier does at once (≤ capacity; TierInfo batchSpeedup):
   * requests beyond it wait in effect, whether in a queue or time-sharing the tier's compute.
   */
  readonly throughput?: number | undefined;
}

export interface NamedPolicy extends Pick<
  PolicyConfig,
  'tiers' | 'objective' | 'fallback' | 'costPer1kTokens' | 'onInfeasible' | 'speculative' | 'cascade'
> {
  readonly name: string;
  /** PolicyConfig maxLoad (absent: no limits). */
  readonly maxLoad?: Readonly<Record<string, number>> | undefined;
}

export interface EngineInput {
  readonly features: RequestFeatures;
  readonly policy: NamedPolicy;
  /** The policy's defaults with the request's own budgets applied. */
  readonly budget: RouteBudget;
  readonly profiles: Readonly<Record<string, TierProfile>>;
  readonly state: Readonly<Record<string, TierState>>;
  /**
   * This request may speculate even where the engine predicts plain decoding faster: the live
   * router sets it on one request in SPECULATION_EXPLORE_EVERY, so a pair measured slow keeps
   * being measured and is taken again once it pays (e.g. when the load that slowed it is gone).
   */
  readonly exploreSpeculation?: boolean | undefined;
}

/** One routed request in this many may speculate against the engine's prediction (above). */
export const SPECULATION_EXPLORE_EVERY = 16;

interface Candidate {
  readonly tier: string;
  readonly ttftMs: number;
  readonly latencyMs: number;
  readonly queueMs: number;
  readonly accuracy: number;
  readonly cost: number;
  readonly available: boolean;
  readonly latencyOk: boolean;
  readonly accuracyOk: boolean;
  /** Below the policy's maxLoad for the tier (or no limit). */
  readonly withinLoad: boolean;
  /** The tier's load and the policy's limit on it, for the trace. */
  readonly load: number;
  readonly maxLoad: number | undefined;
  readonly skip: SkipCause | undefined;
}

/**
 * The policy engine (docs/routing.md "The decision"): a pure function of the request's features, the
 * policy, the tiers' profiles and their health. Same inputs, same plan — which is what lets
 * `tiergate simulate` replay recorded traffic through exactly the code that routes live requests.
 */
export function planRoute(input: EngineInput): RoutePlan {
  const { policy, budget } = input;
  // A policy that speculates predicts its verify tier at the pair's speed while the pair can run
  // and is predicted faster than the verify tier alone (docs/speculative.md "When it speculates").
  let pair =
    policy.speculative === undefined ? undefined : pairPlan(policy.speculative, input.profiles, input.state);
  let declined = '';
  if (pair !== undefined && pair.option.when === 'faster' && input.exploreSpeculation !== true) {
    const plain = assess(pair.option.verify, input, undefined).latencyMs;
    const paired = assess(pair.option.verify, input, pair).latencyMs;
    if (paired > plain) {
      declined = `; no speculation: ${pair.name} predicted ${Math.round(paired)}ms, ${pair.option.verify} alone ${Math.round(plain)}ms`;
      pair = undefined;
    }
  }
  const candidates = policy.tiers.map((t) => assess(t, input, pair));
  const feasible = sortBy(
    candidates.filter((c) => c.available && c.latencyOk && c.accuracyOk && c.withinLoad),
    policy.objective,
  );
  const available = candidates.filter((c) => c.available);
  // Best effort keeps to the policy's load limits while any tier is within them.
  const withinLoad = available.filter((c) => c.withinLoad);
  const pool = withinLoad.length > 0 ? withinLoad : available;
  let chosen: Candidate | undefined = feasible[0];
  let code: RouteReasonCode = 'objective';
  if (chosen === undefined) {
    if (available.length === 0) {
      return rejectedPlan(
        input,
        candidates,
        'unavailable',
        `no tier of policy "${policy.name}" is available (${skips(candidates)})`,
      );
    }
    if (policy.onInfeasible === 'reject') {
      return rejectedPlan(
        input,
        candidates,
        'infeasible',
        `no tier of policy "${policy.name}" meets latency_budget_ms=${budget.latencyMs} and accuracy_floor=${budget.accuracyFloor} (${skips(candidates)})`,
      );
    }
    // Best effort: honour the accuracy floor first (a wrong answer on time is still wrong), then
    // the latency budget, then take the most accurate tier.
    const accurate = sortBy(
      pool.filter((c) => c.accuracyOk),
      'fastest',
    );
    const fast = sortBy(
      pool.filter((c) => c.latencyOk),
      'most_accurate',
    );
    if (accurate[0] !== undefined) [chosen, code] = [accurate[0], 'best_effort_accuracy'];
    else if (fast[0] !== undefined) [chosen, code] = [fast[0], 'best_effort_latency'];
    else [chosen, code] = [sortBy(pool, 'most_accurate')[0]!, 'best_effort'];
  }
  const bestEffort = code !== 'objective';
  const order = [chosen, ...fallbacks(input, candidates, chosen, bestEffort)];
  const attempts = deadlines(order, budget.latencyMs);
  const speculative =
    pair !== undefined && chosen.tier === pair.option.verify
      ? speculativeRoute(pair, chosen.latencyMs)
      : undefined;
  const trace = candidates.map((c) =>
    verdict(
      c,
      order.indexOf(c),
      c === chosen,
      budget,
      c.tier === pair?.option.verify ? pair.name : undefined,
    ),
  );
  let reason = reasonText(code, chosen, policy.objective, budget);
  if (speculative !== undefined)
    reason += ` speculative ${pair!.name} k=${speculative.k}, predicted ${speculative.predictedMs}ms`;
  else if (declined !== '' && chosen.tier === policy.speculative?.verify) reason += declined;
  let cascade: CascadeRoute | undefined;
  const option = policy.cascade;
  if (option !== undefined && chosen.tier === option.then) {
    const first = assess(option.first, input, undefined);
    const perToken = input.profiles[option.first]?.perOutputTokenMs ?? 0;
    const outcome = cascadeRoute(
      option,
      {
        available: first.available,
        ttftMs: first.ttftMs,
        latencyMs: first.latencyMs,
        perOutputTokenMs: perToken,
      },
      chosen.latencyMs,
      input.features.maxTokens,
      budget.latencyMs,
    );
    if ('route' in outcome) {
      cascade = outcome.route;
      reason += ` cascade ${option.first} first (probe ${cascade.probeTokens}, ${cascade.signal} >= ${cascade.threshold}), predicted ${cascade.predictedMs}ms`;
    } else reason += `; ${outcome.declined}`;
  }
  return {
    policy: policy.name,
    objective: policy.objective,
    budget,
    attempts,
    bestEffort,
    code,
    reason,
    trace,
    speculative,
    cascade,
  };
}

/** A plan for a tier chosen without the engine (x-tiergate-tier override, or no policy). */
export function fixedPlan(
  tier: string,
  policy: string,
  objective: Objective,
  code: 'override' | 'static',
  budget: RouteBudget,
): RoutePlan {
  const why =
    code === 'override'
      ? 'x-tiergate-tier override, routing bypassed'
      : 'no routing policy, served model tier';
  return {
    policy,
    objective,
    budget,
    attempts: [{ tier, deadlineMs: Math.max(1, Math.round(budget.latencyMs)) }],
    bestEffort: false,
    code,
    reason: `${code}: ${tier} (${why})`,
    trace: [],
  };
}

function assess(
  tier: string,
  { features, profiles, state, policy, budget }: EngineInput,
  pair: PairPlan | undefined,
): Candidate {
  const p = pair !== undefined && tier === pair.option.verify ? pair.profile : profiles[tier];
  const s = state[tier] ?? { ready: false, breakerOpen: false, queueDepth: 0, capacity: 1 };
  const prompt = Math.max(0, features.promptTokens);
  const tokens = Math.max(0, features.maxTokens - 1);
  const perStream = p?.perOutputTokenPerStreamMs ?? 0;
  const ttftPerStream = p?.ttftPerStreamMs ?? 0;
  // Learned slowdown per stream: the request meets the batch it joins (capped at what the tier
  // runs at once), and only requests beyond that capacity wait. Not learned: the stated
  // throughput (batchSpeedup) stands for it — beyond it requests wait, in effect, in whole
  // service times of the ones ahead (in the queue, or time-sharing the tier's compute).
  const cap = Math.max(1, Math.min(s.capacity, UNBOUNDED_STREAMS));
  const streams = perStream > 0 || ttftPerStream > 0 ? cap : Math.max(1, Math.min(cap, s.throughput ?? cap));
  const joins = Math.min(s.queueDepth + 1, cap);
  // Other tiers busy now: on one machine they share its cores.
  const busy = p === undefined ? 0 : busyOthers(tier, state);
  const ttftBase =
    p === undefined ? 0 : p.ttftMs + p.ttftPerPromptTokenMs * prompt + (p.ttftPerBusyTierMs ?? 0) * busy;
  const perTokenBase = p === undefined ? 0 : p.perOutputTokenMs + (p.perOutputTokenPerBusyTierMs ?? 0) * busy;
  const decodeMs = (perTokenBase + perStream * (joins - 1)) * tokens;
  const serviceMs =
    ttftBase + ttftPerStream * (streams - 1) + (perTokenBase + perStream * (streams - 1)) * tokens;
  const waves = s.queueDepth >= streams ? Math.ceil((s.queueDepth - streams + 1) / streams) : 0;
  const queueMs = (p?.queueMs ?? 0) + waves * serviceMs;
  const ttftMs = p === undefined ? Infinity : queueMs + ttftBase + ttftPerStream * (joins - 1);
  const latencyMs = ttftMs + decodeMs;
  const accuracy = p?.accuracy ?? 0;
  const cost = ((prompt + Math.max(0, features.maxTokens)) / 1000) * (policy.costPer1kTokens[tier] ?? 0);
  const available = p !== undefined && s.ready && !s.breakerOpen;
  const latencyOk = latencyMs <= budget.latencyMs;
  const accuracyOk = accuracy >= budget.accuracyFloor;
  const limit = policy.maxLoad?.[tier];
  const withinLoad = limit === undefined || s.queueDepth < limit;
  const skip: SkipCause | undefined =
    !s.ready || p === undefined
      ? 'not_ready'
      : s.breakerOpen
        ? 'breaker_open'
        : !accuracyOk
          ? 'accuracy'
          : !latencyOk
            ? 'latency'
            : !withinLoad
              ? 'load_limit'
              : undefined;
  return {
    tier,
    ttftMs,
    latencyMs,
    queueMs,
    accuracy,
    cost,
    available,
    latencyOk,
    accuracyOk,
    withinLoad,
    load: s.queueDepth,
    maxLoad: limit,
    skip,
  };
}

/** Other tiers with requests running or waiting now. */
function busyOthers(tier: string, state: Readonly<Record<string, TierState>>): number {
  let busy = 0;
  for (const name in state) if (name !== tier && state[name]!.queueDepth > 0) busy++;
  return busy;
}

/** Above this a tier's stated capacity is "no limit" (the echo tier): no batch to model. */
const UNBOUNDED_STREAMS = 4096;

const comparators: Record<Objective, (a: Candidate, b: Candidate) => number> = {
  cheapest: (a, b) => a.cost - b.cost || a.latencyMs - b.latencyMs,
  fastest: (a, b) => a.latencyMs - b.latencyMs || a.cost - b.cost,
  most_accurate: (a, b) => b.accuracy - a.accuracy || a.latencyMs - b.latencyMs,
};

/** Stable sort: equal candidates keep the policy's tier order. */
function sortBy(list: readonly Candidate[], objective: Objective): Candidate[] {
  return [...list].sort(comparators[objective]);
}

/**
 * Tiers tried after the chosen one fails: the policy's fallback order when given, else the rest in
 * objective order. A fallback need not meet the latency budget (a late answer beats an error; the
 * deadline still bounds it) but must meet the accuracy floor unless the plan is best effort.
 */
function fallbacks(
  input: EngineInput,
  candidates: readonly Candidate[],
  chosen: Candidate,
  bestEffort: boolean,
): Candidate[] {
  const eligible = (c: Candidate): boolean => c !== chosen && c.available && (bestEffort || c.accuracyOk);
  const { policy } = input;
  if (policy.fallback.length > 0) {
    return policy.fallback.flatMap((t) => candidates.filter((c) => c.tier === t && eligible(c)));
  }
  return sortBy(candidates.filter(eligible), policy.objective);
}

/**
 * Each attempt may use the budget except what the next attempt is predicted to need; the last
 * attempt may use all of it. Either way an attempt gets at least DEADLINE_SLACK times its own
 * prediction: predictions are a tail quantile, and cutting a tier off at exactly its p90 would
 * fail over one request in ten (and best-effort plans are predicted over budget by definition).
 */
const DEADLINE_SLACK = 2;

function deadlines(order: readonly Candidate[], budgetMs: number): RouteAttempt[] {
  return order.map((c, i) => {
    const next = order[i + 1];
    const own = DEADLINE_SLACK * c.latencyMs;
    const ms = next === undefined ? Math.max(budgetMs, own) : Math.max(own, budgetMs - next.latencyMs);
    // One object shape for every attempt (a spread per attempt tripled the decision's cost).
    const predictedMs = Number.isFinite(c.latencyMs) ? Math.round(c.latencyMs) : undefined;
    return { tier: c.tier, deadlineMs: Math.max(1, Math.round(ms)), predictedMs };
  });
}

function verdict(
  c: Candidate,
  attempt: number,
  chosen: boolean,
  budget: RouteBudget,
  /** The speculative pair the tier's latency was predicted for, if any. */
  pair?: string,
): TierVerdict {
  const spec = pair === undefined ? '' : ` (speculative ${pair})`;
  const pred = `ttft ${ms(c.ttftMs)} ms, latency ${ms(c.latencyMs)} ms${spec}, accuracy ${c.accuracy.toFixed(4)}`;
  let why: string;
  if (chosen) why = `chosen: ${pred}`;
  else if (c.skip === 'not_ready') why = 'skipped: tier not ready';
  else if (c.skip === 'breaker_open') why = 'skipped: breaker open';
  else if (c.skip === 'accuracy')
    why = `skipped: accuracy ${c.accuracy.toFixed(4)} < floor ${budget.accuracyFloor}`;
  else if (c.skip === 'latency')
    why = `skipped: latency ${ms(c.latencyMs)} ms > budget ${budget.latencyMs} ms`;
  else if (c.skip === 'load_limit') why = `skipped: load ${c.load} >= the policy's maxLoad ${c.maxLoad}`;
  else why = `feasible, not best by objective: ${pred}`;
  if (!chosen && attempt > 0) why += ` (fallback #${attempt})`;
  return {
    tier: c.tier,
    ttftMs: ms(c.ttftMs),
    latencyMs: ms(c.latencyMs),
    queueMs: ms(c.queueMs),
    accuracy: c.accuracy,
    cost: c.cost,
    available: c.available,
    feasible: c.available && c.latencyOk && c.accuracyOk && c.withinLoad,
    chosen,
    attempt: attempt >= 0 ? attempt : undefined,
    skip: c.skip,
    why,
  };
}

function rejectedPlan(
  input: EngineInput,
  candidates: readonly Candidate[],
  code: RouteReasonCode,
  reason: string,
): RoutePlan {
  return {
    policy: input.policy.name,
    objective: input.policy.objective,
    budget: input.budget,
    attempts: [],
    rejected: { reason },
    bestEffort: false,
    code,
    reason: `${code}: ${reason}`,
    trace: candidates.map((c) => verdict(c, -1, false, input.budget)),
  };
}

function skips(candidates: readonly Candidate[]): string {
  return candidates
    .map((c) => {
      if (c.skip === 'not_ready' || c.skip === 'breaker_open')
        return `${c.tier}: ${c.skip.replace('_', ' ')}`;
      return `${c.tier}: latency ${ms(c.latencyMs)} ms, accuracy ${c.accuracy.toFixed(4)}`;
    })
    .join('; ');
}

function reasonText(code: RouteReasonCode, c: Candidate, objective: Objective, budget: RouteBudget): string {
  const lat = `latency ${ms(c.latencyMs)}ms ${c.latencyOk ? '<=' : '>'} ${budget.latencyMs}ms`;
  const acc = `accuracy ${c.accuracy.toFixed(4)} ${c.accuracyOk ? '>=' : '<'} ${budget.accuracyFloor}`;
  const lead = code === 'objective' ? `${objective} feasible` : 'no tier meets both budgets';
  return `${code}: ${c.tier} (${lead}; ${lat}; ${acc})`;
}

function ms(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 10) / 10 : v;
}
