import type { Config } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import type { Tier } from '../tiers/tier.js';
import { decide, type RouteQuestion } from './decide.js';
import { SPECULATION_EXPLORE_EVERY, type TierState } from './engine.js';
import type { LatencyObservation } from './latency-model.js';
import type { RoutePlan } from './plan.js';
import { TierProfiles, type ProfileSnapshot } from './tier-profiles.js';

export { NO_BUDGET_MS, type RouteQuestion } from './decide.js';

/**
 * The stateful side of routing around the pure engine: tier profiles that learn from completed
 * requests, and the tiers' readiness, breaker state and load (from the resilience layer), read
 * per plan from the current config.
 */
export class Router {
  readonly profiles: TierProfiles;
  /** Plans of requests no policy governs and that state no budget, by tier (they never change). */
  private readonly staticPlans = new Map<string, RoutePlan>();
  private breakerOpen: (tier: string) => boolean = () => false;
  /** Requests running or queued on a tier: the admission queues' count (src/resilience/admission.ts). */
  private load: (tier: string) => number = () => 0;

  constructor(
    private readonly config: () => Config,
    family: ModelFamily,
    private readonly tiers: ReadonlyMap<string, Tier>,
  ) {
    // A variant the family does not list (the echo tier's) has no accuracy: it meets no floor above 0.
    const variants: Record<string, string | undefined> = {};
    for (const [name, tier] of tiers) variants[name] = tier.info().variant;
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

  /**
   * The resilience layer tells the router each tier's load: admission is the one place that
   * counts what runs and waits on a tier (docs/architecture.md "Capacity and deadlines").
   */
  useLoad(load: (tier: string) => number): void {
    this.load = load;
  }

  states(): Record<string, TierState> {
    const out: Record<string, TierState> = {};
    for (const [name, tier] of this.tiers) {
      out[name] = {
        ready: tier.health().ready,
        breakerOpen: this.breakerOpen(name),
        queueDepth: this.load(name),
        // A tier that states no capacity (the echo tier does no work) is never saturated.
        capacity: tier.info().capacity ?? UNBOUNDED,
        throughput: tier.info().batchSpeedup,
      };
    }
    return out;
  }

  snapshot(): Record<string, ProfileSnapshot> {
    return this.profiles.snapshot();
  }

  /**
   * The plan for one request (src/routing/decide.ts); throws bad_request for an unknown requested
   * policy. `live` false (Explain): the engine's prediction alone, no speculation exploration.
   */
  plan(q: RouteQuestion, live = true): RoutePlan {
    return decide(
      q,
      {
        routing: this.config().routing,
        profiles: this.snapshotFn,
        state: this.statesFn,
        exploreSpeculation: live ? this.exploreFn : undefined,
      },
      this.staticPlans,
    );
  }

  private readonly snapshotFn = (): Record<string, ProfileSnapshot> => this.snapshot();
  /** Plans of speculating policies so far: every SPECULATION_EXPLORE_EVERY-th may explore. */
  private speculatingPlans = 0;
  private readonly exploreFn = (): boolean => this.speculatingPlans++ % SPECULATION_EXPLORE_EVERY === 0;
  private readonly statesFn = (): Record<string, TierState> => this.states();
}

const UNBOUNDED = 1_000_000;
