import type { RoutingConfig } from '../config/policies.js';
import { fixedPlan, planRoute, type RequestFeatures, type TierProfile, type TierState } from './engine.js';
import type { RoutePlan } from './plan.js';
import type { RouteOptions } from './route-options.js';
import { selectPolicy } from './select-policy.js';

/** Budget of requests that no policy governs: effectively none (10 minutes), but finite for deadlines. */
export const NO_BUDGET_MS = 600_000;

export interface RouteQuestion {
  /** The served model name (already known to exist). */
  readonly model: string;
  /** Its configured tier, used when no policy applies. */
  readonly modelTier: string;
  /** A tier pinned by the request (x-tiergate-tier): bypasses routing. */
  readonly tierOverride?: string | undefined;
  readonly apiKey?: string | undefined;
  readonly options: RouteOptions;
  readonly features: RequestFeatures;
}

/** What the decision reads besides the question: the routing config and the tiers as they are. */
export interface DecisionInputs {
  readonly routing: RoutingConfig;
  readonly profiles: () => Readonly<Record<string, TierProfile>>;
  readonly state: () => Readonly<Record<string, TierState>>;
  /** Whether this request may speculate against the engine's prediction (EngineInput.exploreSpeculation). */
  readonly exploreSpeculation?: () => boolean;
}

/**
 * The one planning entry (docs/routing.md "The decision"): which policy applies, the budgets
 * (policy defaults under the request's own), then the engine — or a fixed plan when a tier is
 * pinned or no policy applies. Live routing (`Router.plan`), `/v1/route/explain`, the gRPC
 * Explain and `tiergate simulate` all plan through it. Profiles and state are read only when
 * the engine runs: a static request costs a table lookup. Throws a bad_request GatewayError for
 * an unknown requested policy.
 */
export function decide(
  q: RouteQuestion,
  inputs: DecisionInputs,
  staticPlans?: Map<string, RoutePlan>,
): RoutePlan {
  const selected = selectPolicy(inputs.routing, {
    requested: q.options.policy,
    apiKey: q.apiKey,
    model: q.model,
  });
  const budget = {
    latencyMs: q.options.latencyBudgetMs ?? selected?.policy.latencyBudgetMs ?? NO_BUDGET_MS,
    accuracyFloor: q.options.accuracyFloor ?? selected?.policy.accuracyFloor ?? 0,
  };
  const objective = selected?.policy.objective ?? 'cheapest';
  const policyName = selected?.name ?? 'none';
  if (q.tierOverride !== undefined)
    return fixedPlan(q.tierOverride, policyName, objective, 'override', budget);
  if (selected === undefined) {
    // Without a policy or any routing wish the plan depends on the tier alone: built once.
    const plain = q.options.latencyBudgetMs === undefined && q.options.accuracyFloor === undefined;
    if (!plain || staticPlans === undefined)
      return fixedPlan(q.modelTier, policyName, objective, 'static', budget);
    let plan = staticPlans.get(q.modelTier);
    if (plan === undefined) {
      plan = fixedPlan(q.modelTier, policyName, objective, 'static', budget);
      staticPlans.set(q.modelTier, plan);
    }
    return plan;
  }
  return planRoute({
    features: q.features,
    policy: { name: selected.name, ...selected.policy },
    budget,
    profiles: inputs.profiles(),
    state: inputs.state(),
    exploreSpeculation:
      selected.policy.speculative?.when === 'faster' && inputs.exploreSpeculation?.() === true,
  });
}

/**
 * Why a request's own budgets (or policy) were not applied, or undefined when they were (or it
 * stated none): a pinned tier, or a model no policy governs, is served as named.
 */
export function budgetsNotApplied(q: RouteQuestion, plan: RoutePlan): string | undefined {
  const budgets = q.options.latencyBudgetMs !== undefined || q.options.accuracyFloor !== undefined;
  if (plan.code === 'override') {
    const tier = q.tierOverride ?? plan.attempts[0]?.tier ?? '?';
    if (q.options.policy !== undefined)
      return `policy ${q.options.policy} not applied: tier pinned to ${tier}`;
    return budgets ? `tier pinned to ${tier}` : undefined;
  }
  if (budgets && plan.code === 'static')
    return `model ${q.model} is pinned to tier ${q.modelTier} and no policy applies`;
  return undefined;
}
