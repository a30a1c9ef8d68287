/**
 * The policy engine's output (docs/architecture.md "A request's path", step 3; docs/routing.md), consumed by the executor (src/resilience/).
 * Keep this shape stable: the executor, explain/simulate and the route headers all read it.
 */

/** What the policy optimises among the tiers that meet both budgets. */
export type Objective = 'cheapest' | 'fastest' | 'most_accurate';

/**
 * Low-cardinality reason codes, used as a metric label and at the start of the reason header.
 * - objective: the best feasible tier by the policy's objective.
 * - override: `x-tiergate-tier` named the tier; routing was bypassed.
 * - static: no policy applies; the served model's configured tier.
 * - best_effort_latency / best_effort_accuracy / best_effort: no tier met both budgets; the tier
 *   meeting the accuracy floor (resp. the latency budget, neither) was taken per `onInfeasible`.
 * - infeasible: no tier met both budgets and the policy rejects such requests.
 * - unavailable: no candidate tier is ready with a closed breaker.
 */
export type RouteReasonCode =
  | 'objective'
  | 'override'
  | 'static'
  | 'best_effort_latency'
  | 'best_effort_accuracy'
  | 'best_effort'
  | 'infeasible'
  | 'unavailable';

export interface RouteAttempt {
  readonly tier: string;
  /** Budget for this attempt in ms, relative to the attempt's start (the executor also caps it by what is left of the request's budget). */
  readonly deadlineMs: number;
  /**
   * The engine's predicted latency of the attempt (queue wait, first token and max_tokens), ms,
   * when the plan was made; absent for a fixed plan (pinned tier, no policy). The executor reads
   * it to say whether a tier it may not retry on would have fitted the deadline.
   */
  readonly predictedMs?: number | undefined;
}

/** Why a tier was skipped; undefined for the chosen tier and tiers that were merely not best. */
export type SkipCause =
  'not_ready' | 'breaker_open' | 'latency' | 'accuracy' | 'load_limit' | 'not_candidate';

/** The engine's view of one tier for one request. */
export interface TierVerdict {
  readonly tier: string;
  /** Predicted time to first token (queue wait included), ms. */
  readonly ttftMs: number;
  /** Predicted time to the last of max_tokens tokens, ms. */
  readonly latencyMs: number;
  /** Predicted queue wait, ms (included in ttftMs). */
  readonly queueMs: number;
  /** Quality relative to the FP32 reference, in (0, 1]. */
  readonly accuracy: number;
  /** Cost of prompt + max_tokens at the policy's price per 1k tokens. */
  readonly cost: number;
  readonly available: boolean;
  /** Available and within both budgets. */
  readonly feasible: boolean;
  readonly chosen: boolean;
  /** Position in plan.attempts, or undefined when the tier is not attempted. */
  readonly attempt: number | undefined;
  readonly skip: SkipCause | undefined;
  /** One human-readable sentence: why taken or skipped. */
  readonly why: string;
}

export interface RouteBudget {
  readonly latencyMs: number;
  /** Lowest acceptable accuracy relative to the FP32 reference, in [0, 1]. */
  readonly accuracyFloor: number;
}

/**
 * Speculative decoding across two tiers (docs/speculative.md): `draft` proposes tokens, `verify`
 * checks them in one forward pass and its distribution is the output's. A plan with it runs the
 * speculative strategy (src/service/strategy.ts); its attempts start with the verify tier, the
 * plain decoding it falls back to when speculation stops or fails.
 */
export interface SpeculativeRoute {
  readonly draft: string;
  readonly verify: string;
  /** Draft tokens per verify step to start with (and the most when k does not adapt). */
  readonly k: number;
  /** Most draft tokens per step when k adapts to the measured acceptance. */
  readonly maxK: number;
  readonly adaptive: boolean;
  /** Draft the next block while the verify tier checks this one (docs/speculative.md "Lookahead"). */
  readonly lookahead: boolean;
  /** Streams on the verify tier at which speculation gives way to plain decoding there (undefined: its capacity). */
  readonly stopAtLoad: number | undefined;
  /** The pair's predicted latency of the request when planned (queue, first token, max_tokens), ms. */
  readonly predictedMs: number;
}

export type CascadeSignal = 'mean_logprob' | 'min_margin';

/**
 * A cascade (docs/cascade.md): `first` answers, and the request escalates to `then` (the plan's
 * attempts, from scratch) when its opening `probeTokens` tokens score below `threshold`. A plan with it runs the cascade strategy
 * (src/service/strategy.ts); its attempts start with `then`.
 */
export interface CascadeRoute {
  readonly first: string;
  readonly then: string;
  /** What the probe judges: the tokens' mean logprob, or the smallest top-1/top-2 logprob gap. */
  readonly signal: CascadeSignal;
  /** The least score kept (a logprob for mean_logprob, a logprob gap for min_margin). */
  readonly threshold: number;
  readonly probeTokens: number;
  /** Predicted latency when the request escalates (the probe on `first`, then `then` in full), ms. */
  readonly predictedMs: number;
}

export interface RoutePlan {
  /** The policy's name ("none" when no policy applies). */
  readonly policy: string;
  readonly objective: Objective;
  readonly budget: RouteBudget;
  /** Ordered: the chosen tier first, then fallbacks. Empty when rejected. */
  readonly attempts: readonly RouteAttempt[];
  /** Set when the request must not run; the reason is the client-facing error message. */
  readonly rejected?: { readonly reason: string } | undefined;
  /** True when no tier met both budgets and the policy serves the request anyway. */
  readonly bestEffort: boolean;
  readonly code: RouteReasonCode;
  /** Short, ASCII, for the x-tiergate-route-reason header. */
  readonly reason: string;
  readonly trace: readonly TierVerdict[];
  /** Set when the request runs speculatively (attempts[0] is then the verify tier). */
  readonly speculative?: SpeculativeRoute | undefined;
  /** Set when the request runs as a cascade (attempts[0] is then the escalation tier). */
  readonly cascade?: CascadeRoute | undefined;
}
