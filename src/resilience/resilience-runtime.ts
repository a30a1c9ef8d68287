import type { Logger } from 'pino';
import {
  tierResilience,
  type AdmissionSettings,
  type ResilienceConfig,
  type TierResilience,
} from '../config/resilience.js';
import type { Config } from '../config/index.js';
import type { MetricsService } from '../observability/metrics.js';
import type { Tier } from '../tiers/tier.js';
import { AdmissionController } from './admission.js';
import { DeadlineWatch } from './deadline-watch.js';
import type { RouteAttempt } from '../routing/plan.js';
import { FaultInjectingTier } from './fault-tier.js';
import { BREAKER_STATE_VALUE, ResilienceMetrics } from './resilience-metrics.js';
import { TierRetryBudgets } from './retry-budget.js';
import { TierBreaker } from './tier-breaker.js';

/** Everything the executor needs for one tier. */
export interface TierGuard {
  readonly name: string;
  /** The tier behind fault injection (a pass-through when no fault is configured). */
  readonly tier: Tier;
  readonly breaker: TierBreaker;
  readonly admission: AdmissionController;
  settings: TierResilience;
}

/**
 * The live resilience state of a gateway: one guard (breaker, admission, faults) per tier and
 * the tiers' retry budgets. `apply()` swaps settings in place on a hot reload, so in-flight
 * requests keep their slots and breakers keep their history.
 */
export class ResilienceRuntime {
  readonly metrics: ResilienceMetrics;
  /** One retry budget per tier (retry-budget.ts says why not one for the gateway). */
  readonly retryBudgets: TierRetryBudgets;
  /** The attempts' deadlines, one timer for all (deadline-watch.ts). */
  readonly deadlines = new DeadlineWatch();
  private readonly guards = new Map<string, TierGuard>();
  private config: ResilienceConfig;
  /** defaultAttempts per tier, built once per settings (cleared by apply()). */
  private readonly attemptLists = new Map<string, readonly RouteAttempt[]>();

  constructor(
    tiers: ReadonlyMap<string, Tier>,
    config: Config,
    metrics: MetricsService,
    readonly logger: Logger,
  ) {
    this.metrics = new ResilienceMetrics(metrics, () => this.admissionState());
    this.config = config.resilience as ResilienceConfig;
    this.retryBudgets = new TierRetryBudgets(this.config.retryBudget);
    for (const [name, tier] of tiers) {
      const settings = tierResilience(this.config, name);
      const m = this.metrics;
      const successes = m.breakerEvents.labels(name, 'success');
      const failures = m.breakerEvents.labels(name, 'failure');
      const guard: TierGuard = {
        name,
        settings,
        tier: new FaultInjectingTier(
          tier,
          () => guard.settings.fault,
          (kind) => m.faults.inc({ tier: name, fault: kind }),
        ),
        breaker: new TierBreaker(name, settings.breaker, (event, state) => {
          // Every stream ends in a success or a failure: those series are looked up once.
          if (event === 'success') return successes.inc();
          if (event === 'failure') return failures.inc();
          m.breakerEvents.labels(name, event).inc();
          // The state changes only with these events; success/failure/reject (per request) leave it.
          if (event === 'open' || event === 'half_open' || event === 'close') {
            m.breakerState.set({ tier: name }, BREAKER_STATE_VALUE[state]);
            logger.warn({ tier: name, breaker: state }, `circuit breaker of tier "${name}" is now ${state}`);
          }
        }),
        admission: new AdmissionController(name, admissionFor(settings, tier, this.config, name)),
      };
      m.breakerState.set({ tier: name }, 0);
      this.guards.set(name, guard);
    }
  }

  /** Queue depth and active streams per tier, for the admission gauges (read at scrape time). */
  *admissionState(): Iterable<{ tier: string; queued: number; active: number }> {
    for (const [tier, g] of this.guards)
      yield { tier, queued: g.admission.queued, active: g.admission.running };
  }

  /** For the router (Router.useBreakers): a tier whose breaker is open should not be planned first. */
  isBreakerOpen(name: string): boolean {
    return this.guards.get(name)?.breaker.state === 'open';
  }

  /**
   * Requests running or waiting on a tier: the one count of a tier's load, read by the router's
   * queue-wait model (docs/architecture.md "Capacity and deadlines").
   */
  load(name: string): number {
    const a = this.guards.get(name)?.admission;
    return a === undefined ? 0 : a.running + a.queued;
  }

  /** Streams running and waiting, over every tier (introspection, tests: zero when idle). */
  occupancy(): { running: number; queued: number } {
    let running = 0;
    let queued = 0;
    for (const g of this.guards.values()) {
      running += g.admission.running;
      queued += g.admission.queued;
    }
    return { running, queued };
  }

  /** Tiers running at least one request (read on every token event: no allocation). */
  busyTiers(): number {
    let busy = 0;
    for (const g of this.guards.values()) if (g.admission.running > 0) busy++;
    return busy;
  }

  guard(name: string): TierGuard | undefined {
    return this.guards.get(name);
  }

  get requestTimeoutMs(): number {
    return this.config.requestTimeoutMs;
  }

  /** The attempt list when no RoutePlan gives one: the tier, then its configured fallbacks. */
  defaultAttempts(tier: string): readonly RouteAttempt[] {
    let list = this.attemptLists.get(tier);
    if (list === undefined) {
      const g = this.guards.get(tier);
      const names = [tier, ...(g?.settings.fallbacks ?? [])];
      list = Object.freeze(
        names.map((name) =>
          Object.freeze({ tier: name, deadlineMs: this.guards.get(name)?.settings.attemptTimeoutMs ?? 0 }),
        ),
      );
      // Unknown names are not cached: the map stays bounded by the configured tiers.
      if (g !== undefined) this.attemptLists.set(tier, list);
    }
    return list;
  }

  /** Applies reloaded settings (already validated) to every tier. */
  apply(config: Config): void {
    this.config = config.resilience as ResilienceConfig;
    this.retryBudgets.update(this.config.retryBudget);
    this.attemptLists.clear();
    for (const [name, guard] of this.guards) {
      const settings = tierResilience(this.config, name);
      guard.settings = settings;
      guard.breaker.update(settings.breaker);
      guard.admission.update(admissionFor(settings, guard.tier, this.config, name));
    }
  }

  close(): void {
    for (const g of this.guards.values()) g.breaker.shutdown();
  }
}

/**
 * A tier's admission limits: the one queue of the tier (docs/architecture.md "Capacity and
 * deadlines"). Unless configured, at most the tier's stated capacity runs at once, so the tier
 * never queues on its own; the queue's bound is the tier's `maxQueue` option unless the tier's
 * own resilience entry sets one.
 */
function admissionFor(
  settings: TierResilience,
  tier: Tier,
  config: ResilienceConfig,
  name: string,
): AdmissionSettings {
  const info = tier.info();
  const explicitQueue = config.tiers[name]?.admission?.maxQueue;
  return {
    maxConcurrent:
      settings.admission.maxConcurrent > 0 ? settings.admission.maxConcurrent : (info.capacity ?? 0),
    maxQueue: explicitQueue ?? info.maxQueue ?? settings.admission.maxQueue,
    initialServiceMs: settings.admission.initialServiceMs,
  };
}
