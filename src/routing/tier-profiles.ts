import type { ProfileSeed, RoutingConfig } from '../config/policies.js';
import type { ModelFamily } from '../family/manifest.js';
import { loadFamilyProfiles, measuredAccuracy, type AccuracyProfiles } from '../family/accuracy-profiles.js';
import { relativeAccuracy } from './accuracy.js';
import type { TierProfile } from './engine.js';
import { LatencyModel, type LatencyObservation } from './latency-model.js';

/** The defaults of ProfileSeedSchema, for tiers with no `routing.profiles` entry. */
const DEFAULT_SEED: ProfileSeed = { ttftMs: 50, ttftPerPromptTokenMs: 0.5, perOutputTokenMs: 5, queueMs: 0 };

export interface ProfileSnapshot extends TierProfile {
  /** Live requests in the latency model's window. */
  readonly samples: number;
  /** Whether the latency terms are measured (true) or the configured prior (false). */
  readonly live: boolean;
  /** Live: the quantile of the admission waits observed (the engine predicts from load instead). */
  readonly observedQueueMs: number;
  /**
   * Where the busy-tier slopes come from: the tier's own window, or — for a tier never seen
   * while others were busy — borrowed from the tiers that were, in proportion to its own speed;
   * while no tier has been, `routing.busyTierSlowdown` (prior).
   */
  readonly busySlopes: 'learned' | 'borrowed' | 'prior' | 'none';
  /** Where the accuracy came from. */
  readonly accuracySource: 'config' | 'eval' | 'manifest' | 'unknown';
}

/**
 * Accuracy and live latency model of every tier (docs/routing.md "Tier profiles"). Accuracy is
 * fixed per variant; latency models learn from completed requests (`observe`).
 */
export class TierProfiles {
  private readonly models = new Map<string, LatencyModel>();
  private readonly routing: () => RoutingConfig;
  /** The routing config the latency models were last set up with (a reload makes a new object). */
  private applied: RoutingConfig | undefined;
  /** Measured accuracy per tier, computed once: the family and its eval do not change while running. */
  private readonly measured = new Map<
    string,
    { evaluated?: number | undefined; measured?: number | undefined }
  >();

  constructor(
    /** The routing config, or a getter of the live one (hot reload: priors, window, accuracy). */
    routing: RoutingConfig | (() => RoutingConfig),
    /** Manifest variant id each tier serves (undefined: not a family variant, e.g. echo). */
    private readonly variants: Readonly<Record<string, string | undefined>>,
    private readonly family: ModelFamily,
    /** `tiergate eval`'s measurements (<family dir>/accuracy-profiles.json), preferred to the manifest. */
    private readonly evaluated: AccuracyProfiles | undefined = loadFamilyProfiles(family),
  ) {
    this.routing = typeof routing === 'function' ? routing : () => routing;
  }

  observe(tier: string, observation: LatencyObservation): void {
    this.model(tier).observe(observation);
  }

  snapshot(): Record<string, ProfileSnapshot> {
    const out: Record<string, ProfileSnapshot> = {};
    for (const tier of Object.keys(this.variants)) out[tier] = this.profile(tier);
    fillBusySlopes(out, this.routing().busyTierSlowdown);
    // A speculative pair ("edge>main", docs/speculative.md) once its own model is live; until
    // then the engine plans it from its tiers' profiles (src/routing/speculative-route.ts).
    if (this.models.size > Object.keys(out).length) {
      for (const name of this.models.keys()) {
        if (name in out) continue;
        const p = this.profile(name);
        if (p.live) out[name] = p;
      }
    }
    return out;
  }

  profile(tier: string): ProfileSnapshot {
    const est = this.model(tier).estimate();
    const configured = this.routing().profiles[tier]?.accuracy;
    const { evaluated, measured } = this.accuracyOf(tier);
    return {
      ttftMs: est.ttftMs,
      ttftPerPromptTokenMs: est.ttftPerPromptTokenMs,
      ttftPerStreamMs: est.ttftPerStreamMs,
      ttftPerBusyTierMs: est.ttftPerBusyTierMs,
      perOutputTokenMs: est.perOutputTokenMs,
      perOutputTokenPerStreamMs: est.perOutputTokenPerStreamMs,
      perOutputTokenPerBusyTierMs: est.perOutputTokenPerBusyTierMs,
      // A live model predicts queueing from the tier's load (src/routing/engine.ts), not from
      // what earlier requests waited; the prior's fixed wait applies until then.
      queueMs: est.live ? 0 : est.queueMs,
      observedQueueMs: est.live ? est.queueMs : 0,
      busySlopes: est.busyTiersSeen ? 'learned' : 'none',
      samples: est.samples,
      live: est.live,
      // A tier with no known accuracy cannot meet any floor above 0.
      accuracy: configured ?? measured ?? 0,
      accuracySource:
        configured !== undefined
          ? 'config'
          : evaluated !== undefined
            ? 'eval'
            : measured !== undefined
              ? 'manifest'
              : 'unknown',
    };
  }

  private accuracyOf(tier: string): { evaluated?: number | undefined; measured?: number | undefined } {
    let known = this.measured.get(tier);
    if (known === undefined) {
      const variant = this.variants[tier];
      const evaluated = variant === undefined ? undefined : measuredAccuracy(this.evaluated, variant);
      const measured =
        variant === undefined ? undefined : (evaluated ?? relativeAccuracy(this.family, variant));
      known = { evaluated, measured };
      this.measured.set(tier, known);
    }
    return known;
  }

  private model(tier: string): LatencyModel {
    const routing = this.routing();
    if (routing !== this.applied) {
      // A reloaded config: new priors, window, quantile and minSamples apply to the live models,
      // which keep their most recent observations.
      this.applied = routing;
      for (const [name, m] of this.models) m.reconfigure(seedOf(routing, name), routing);
    }
    let m = this.models.get(tier);
    if (m === undefined) {
      m = new LatencyModel(seedOf(routing, tier), routing);
      this.models.set(tier, m);
    }
    return m;
  }
}

/**
 * Tiers on one machine share its cores, so a tier whose window never held requests made while
 * other tiers were busy (e.g. one the router rarely picks, calibrated alone) would be predicted as
 * if it had the machine to itself. Until it learns its own, it is given the slowdown the tiers
 * that did learn theirs show, relative to their own speed (the median of their slope ÷ base).
 * Before any tier has (a gateway just started, its tiers calibrated one at a time), the configured
 * prior fraction stands in: predicting every tier as if it had the machine to itself would send
 * work to all of them at once and overload the machine before the models learn better.
 */
function fillBusySlopes(profiles: Record<string, ProfileSnapshot>, prior: number): void {
  const learned = Object.values(profiles).filter((p) => p.live && p.busySlopes === 'learned');
  const ratio = (slope: (p: ProfileSnapshot) => number, base: (p: ProfileSnapshot) => number): number =>
    medianOf(learned.filter((p) => base(p) > 0).map((p) => slope(p) / base(p)));
  const [perToken, ttft] =
    learned.length === 0
      ? [prior, prior]
      : [
          ratio(
            (p) => p.perOutputTokenPerBusyTierMs ?? 0,
            (p) => p.perOutputTokenMs,
          ),
          ratio(
            (p) => p.ttftPerBusyTierMs ?? 0,
            (p) => p.ttftMs,
          ),
        ];
  if (perToken === 0 && ttft === 0) return;
  for (const [tier, p] of Object.entries(profiles)) {
    if (p.busySlopes === 'learned') continue;
    profiles[tier] = {
      ...p,
      perOutputTokenPerBusyTierMs: perToken * p.perOutputTokenMs,
      ttftPerBusyTierMs: ttft * p.ttftMs,
      busySlopes: learned.length === 0 ? 'prior' : 'borrowed',
    };
  }
}

function medianOf(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function seedOf(routing: RoutingConfig, tier: string): ProfileSeed {
  return routing.profiles[tier] ?? DEFAULT_SEED;
}
