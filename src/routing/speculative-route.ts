import type { PolicyConfig } from '../config/policies.js';
import type { SpeculativeRoute } from './plan.js';

/** A policy's `speculative` option as configured (docs/speculative.md). */
export type SpeculativeOption = NonNullable<PolicyConfig['speculative']>;

/**
 * A speculative route's name: "draft>verify" (e.g. "edge>main"). It names the pair wherever a
 * tier name would appear for the part the pair served: `x-tiergate-served-by`, the latency model
 * that learns the pair's timings (and its `routing.profiles` prior), and the `pair` label of the
 * speculation metrics.
 */
export function pairName(route: { readonly draft: string; readonly verify: string }): string {
  return `${route.draft}>${route.verify}`;
}

/** The draft and verify tier of a pair name, or undefined for a plain tier name. */
export function parsePairName(name: string): { draft: string; verify: string } | undefined {
  const at = name.indexOf('>');
  if (at <= 0 || at === name.length - 1 || name.indexOf('>', at + 1) !== -1) return undefined;
  return { draft: name.slice(0, at), verify: name.slice(at + 1) };
}

/** The tier whose output a served part is: the verify tier of a pair, else the tier itself. */
export function outputTier(name: string): string {
  return parsePairName(name)?.verify ?? name;
}

/** A tier's latency terms (the engine's TierProfile without accuracy; declared here, not imported, so engine.ts can import this file). */
export interface LatencyTerms {
  readonly ttftMs: number;
  readonly ttftPerPromptTokenMs: number;
  readonly ttftPerStreamMs?: number | undefined;
  readonly ttftPerBusyTierMs?: number | undefined;
  readonly perOutputTokenMs: number;
  readonly perOutputTokenPerStreamMs?: number | undefined;
  readonly perOutputTokenPerBusyTierMs?: number | undefined;
  readonly queueMs: number;
}

interface ProfileLike extends LatencyTerms {
  readonly accuracy: number;
}

interface StateLike {
  readonly ready: boolean;
  readonly breakerOpen: boolean;
  readonly queueDepth: number;
  readonly capacity: number;
}

/**
 * The latency prior of a pair the gateway has not measured yet: the verify tier's, with the
 * per-token time divided by PRIOR_SPEEDUP and the draft tier's time to first token added (both
 * tiers read the prompt). The pair's own latency model replaces it once it is live (`minSamples`
 * speculated requests).
 */
export function pairPrior(verify: LatencyTerms, draft: LatencyTerms): LatencyTerms {
  return {
    ttftMs: verify.ttftMs + draft.ttftMs,
    ttftPerPromptTokenMs: verify.ttftPerPromptTokenMs + draft.ttftPerPromptTokenMs,
    ttftPerStreamMs: verify.ttftPerStreamMs,
    ttftPerBusyTierMs: verify.ttftPerBusyTierMs,
    perOutputTokenMs: verify.perOutputTokenMs / PRIOR_SPEEDUP,
    perOutputTokenPerStreamMs: (verify.perOutputTokenPerStreamMs ?? 0) / PRIOR_SPEEDUP,
    perOutputTokenPerBusyTierMs: (verify.perOutputTokenPerBusyTierMs ?? 0) / PRIOR_SPEEDUP,
    queueMs: verify.queueMs,
  };
}

/** What a pair is assumed to gain over its verify tier alone until measured. */
export const PRIOR_SPEEDUP = 1.5;

/** The speculative pair of a plan and the profile the engine predicts its verify tier with. */
export interface PairPlan {
  readonly name: string;
  /** The verify tier's accuracy, the pair's latency terms. */
  readonly profile: ProfileLike;
  readonly option: SpeculativeOption;
}

/**
 * The pair the engine plans with for a policy that speculates, or undefined when speculation
 * cannot run now: the draft tier is not ready or its breaker is open, or the verify tier is
 * saturated (at high load speculation costs the verify tier throughput; plain decoding there
 * batches instead). The pair's measured profile is used when live, else `pairPrior`.
 */
export function pairPlan(
  option: SpeculativeOption | undefined,
  profiles: Readonly<Record<string, ProfileLike | undefined>>,
  state: Readonly<Record<string, StateLike | undefined>>,
): PairPlan | undefined {
  if (option === undefined) return undefined;
  const draft = state[option.draft];
  const verify = state[option.verify];
  const v = profiles[option.verify];
  const d = profiles[option.draft];
  if (draft === undefined || verify === undefined || v === undefined || d === undefined) return undefined;
  if (!draft.ready || draft.breakerOpen) return undefined;
  if (verify.queueDepth >= (option.stopAtLoad ?? verify.capacity)) return undefined;
  const name = pairName(option);
  const own = profiles[name];
  const terms = own ?? pairPrior(v, d);
  return {
    name,
    option,
    profile: {
      ttftMs: terms.ttftMs,
      ttftPerPromptTokenMs: terms.ttftPerPromptTokenMs,
      ttftPerStreamMs: terms.ttftPerStreamMs,
      ttftPerBusyTierMs: terms.ttftPerBusyTierMs,
      perOutputTokenMs: terms.perOutputTokenMs,
      perOutputTokenPerStreamMs: terms.perOutputTokenPerStreamMs,
      perOutputTokenPerBusyTierMs: terms.perOutputTokenPerBusyTierMs,
      queueMs: terms.queueMs,
      accuracy: v.accuracy,
    },
  };
}

/** The plan's speculative route, for the strategy (src/service/strategy.ts). */
export function speculativeRoute(pair: PairPlan, predictedMs: number): SpeculativeRoute {
  const { option } = pair;
  return {
    draft: option.draft,
    verify: option.verify,
    k: option.k,
    maxK: option.maxK ?? Math.min(16, 2 * option.k),
    adaptive: option.adaptive,
    lookahead: option.lookahead,
    stopAtLoad: option.stopAtLoad,
    predictedMs: Math.round(predictedMs),
  };
}
