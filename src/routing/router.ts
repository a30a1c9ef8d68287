import type { Config } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import type { Tier } from '../tiers/tier.js';
import { fixedPlan, planRoute, type RequestFeatures, type TierState } from './engine.js';
import type { LatencyObservation } from './latency-model.js';
import type { RoutePlan } from './plan.js';
import type { RouteOptions } from './route-options.js';
import { selectPolicy } from './select-policy.js';
import { tierCapacity } from './tier-capacity.js';
import { TierProfiles, type ProfileSnapshot } from './tier-profiles.js';

/** Budget of requests that no policy governs: effectively none (10 minutes), but finite for deadlines. */
export const NO_BUDGET_MS = 600_000;

export interface RouteQuestion {
  /** The served model name (already known to exist). */
  readonly model: string;
  /** Its configured tier, used when no policy applies. */
  readonly modelTier: string;
  /** x-tiergate-tier: bypasses routing. */
  readonly tierOverride?: string | undefined;
  readonly apiKey?: string | undefined;
  readonly options: RouteOptions;
  readonly features: RequestFeatures;
}

/**
 * The stateful side of routing around the pure engine: tier profiles that learn from completed
 * requests, per-tier in-flight counts (the queue depth the engine sees), breaker state from the
 * resilience layer, and policy selection from the current config.
 */
export class Router {
  readonly profiles: TierProfiles;
  private readonly inFlight = new Map<string, number>();
  /** Plans of requests no policy governs and that state no budget, by tier (they never change). */
  private readonly staticPlans = new Map<string, RoutePlan>();
  private breakerOpen: (tier: string) => boolean = () => false;

  constructor(
    private readonly config: () => Config,
    family: ModelFamily,
    private readonly tiers: ReadonlyMap<string, Tier>,
  ) {
    const variants: Record<string, string | undefined> = {};
    for (const [name, tier] of tiers)
      variants[name] = tier.info().framework === 'echo' ? undefined : tier.info().variant;
    this.profiles = new TierProfiles(() => config().routing, variants, family);
  }

  /** The resilience layer tells the router which breakers are open (default: none). */
  useBreakers(isOpen: (tier: string) => boolean): void {
    this.breakerOpen = isOpen;
  }

  /** Called by the pipeline when a request on `tier` completes (feeds the latency model). */
  observe(tier: string, observation: LatencyObservation): void {
    this.profiles.observe(tier, observation);
  }

  /** Counts a request against a tier until the returned release function is called (once). */
  admit(tier: string): () => void {
    this.inFlight.set(tier, (this.inFlight.get(tier) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight.set(tier, Math.max(0, (this.inFlight.get(tier) ?? 1) - 1));
    };
  }

  states(): Record<string, TierState> {
    const config = this.config();
    const out: Record<string, TierState> = {};
    for (const [name, tier] of this.tiers) {
      out[name] = {
        ready: tier.health().ready,
        breakerOpen: this.breakerOpen(name),
        queueDepth: this.inFlight.get(name) ?? 0,
        capacity: tierCapacity(config.tiers[name]),
      };
    }
    return out;
  }

  snapshot(): Record<string, ProfileSnapshot> {
    return this.profiles.snapshot();
  }

  /** The plan for one request; throws a 400 ApiError for an unknown requested policy. */
  plan(q: RouteQuestion): RoutePlan {
    const routing = this.config().routing;
    const selected = selectPolicy(routing, { requested: q.options.policy, apiKey: q.apiKey, model: q.model });
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
      if (!plain) return fixedPlan(q.modelTier, policyName, objective, 'static', budget);
      let plan = this.staticPlans.get(q.modelTier);
      if (plan === undefined) {
        plan = fixedPlan(q.modelTier, policyName, objective, 'static', budget);
        this.staticPlans.set(q.modelTier, plan);
      }
      return plan;
    }
    return planRoute({
      features: q.features,
      policy: { name: selected.name, ...selected.policy },
      budget,
      profiles: this.snapshot(),
      state: this.states(),
    });
  }
}
