import type { GenerationSource } from '../pipeline/source.js';
import { ResilientGeneration, type ExecutionRecord } from '../resilience/executor.js';
import type { ResilienceRuntime } from '../resilience/resilience-runtime.js';
import type { RouteAttempt, RoutePlan } from '../routing/plan.js';

/** What a strategy runs with: the tiers' resilience state, the attempts and the request's record. */
export interface StrategyContext {
  readonly runtime: ResilienceRuntime;
  readonly attempts: readonly RouteAttempt[];
  /** Fallbacks, continuations and the parts each tier served: read by headers, logs and the latency models. */
  readonly record: ExecutionRecord;
  /** Absolute deadline of the whole request (ms since the epoch); default from config. */
  readonly deadline: number | undefined;
}

/**
 * How an execution turns its plan into tokens: the slot where other ways of running a plan plug
 * in (speculative decoding across tiers, cascades: docs/architecture.md "Execution strategies").
 * A strategy gives the pipeline one GenerationSource per request; the Execution around it keeps
 * owning admission of the request, its abort, its deadline and its settlement.
 */
export interface ExecutionStrategy {
  /** For logs and explain. */
  readonly name: string;
  source(context: StrategyContext): GenerationSource;
}

/** The plan's attempt list, one tier at a time, with failover and mid-stream continuation. */
export const ATTEMPT_LIST: ExecutionStrategy = {
  name: 'attempts',
  source: (c) => new ResilientGeneration(c.runtime, c.attempts, c.record, c.deadline),
};

/** The strategy for a plan: the attempt list for every plan today. */
export function strategyFor(_plan: RoutePlan): ExecutionStrategy {
  return ATTEMPT_LIST;
}
