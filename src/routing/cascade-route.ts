import type { PolicyConfig } from '../config/policies.js';
import type { CascadeRoute } from './plan.js';

/** A policy's `cascade` option as configured (docs/cascade.md). */
export type CascadeOption = NonNullable<PolicyConfig['cascade']>;

/** What the engine predicted for the cascade's first tier on this request. */
export interface FirstTierPrediction {
  readonly available: boolean;
  /** Queue wait plus time to first token, ms. */
  readonly ttftMs: number;
  /** The whole answer on the first tier (max_tokens), ms. */
  readonly latencyMs: number;
  readonly perOutputTokenMs: number;
}

/**
 * The plan's cascade, or why there is none. A cascade runs when the engine chose the option's
 * `then` tier and `first` can serve; its prediction is the slower of its two outcomes — the
 * first tier keeping the whole answer, or the probe on `first` followed by `then` in full — and
 * must fit the latency budget (a kept answer that arrives late is no saving).
 */
export function cascadeRoute(
  option: CascadeOption,
  first: FirstTierPrediction,
  thenLatencyMs: number,
  maxTokens: number,
  budgetMs: number,
): { route: CascadeRoute } | { declined: string } {
  if (!first.available) return { declined: `no cascade: ${option.first} unavailable` };
  const probe = Math.min(option.probeTokens, Math.max(1, maxTokens));
  const escalated = first.ttftMs + first.perOutputTokenMs * (probe - 1) + thenLatencyMs;
  const predicted = Math.max(first.latencyMs, escalated);
  if (predicted > budgetMs) {
    return {
      declined: `no cascade: ${option.first}>>${option.then} predicted ${Math.round(predicted)}ms over the ${Math.round(budgetMs)}ms budget`,
    };
  }
  return {
    route: {
      first: option.first,
      then: option.then,
      signal: option.minMargin !== undefined ? 'min_margin' : 'mean_logprob',
      threshold: option.minMargin ?? option.minMeanLogprob ?? 0,
      probeTokens: option.probeTokens,
      predictedMs: Math.round(predicted),
    },
  };
}

/** A cascade's name where a tier name would appear (metrics labels, logs): "first>>then". */
export function cascadeName(route: { readonly first: string; readonly then: string }): string {
  return `${route.first}>>${route.then}`;
}
