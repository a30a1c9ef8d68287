import type { MetricsService } from '../observability/metrics.js';
import type { GenerationSource } from '../pipeline/source.js';
import { ResilientGeneration, type ExecutionRecord } from '../resilience/executor.js';
import type { ResilienceRuntime } from '../resilience/resilience-runtime.js';
import type { CascadeRoute, RouteAttempt, RoutePlan, SpeculativeRoute } from '../routing/plan.js';
import { CascadeGeneration } from './cascade/cascade-source.js';
import { speculationMetrics } from './speculative/speculation-metrics.js';
import { SpeculativeGeneration } from './speculative/speculative-source.js';

/** What a strategy runs with: the tiers' resilience state, the attempts and the request's record. */
export interface StrategyContext {
  readonly runtime: ResilienceRuntime;
  readonly attempts: readonly RouteAttempt[];
  /** Fallbacks, continuations and the parts each tier served: read by headers, logs and the latency models. */
  readonly record: ExecutionRecord;
  /** Absolute deadline of the whole request (ms since the epoch); default from config. */
  readonly deadline: number | undefined;
  /** The gateway's metrics (a strategy's own series register there once). */
  readonly metrics: MetricsService;
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

/**
 * Speculative decoding across two tiers (docs/speculative.md): drafts on one, verifies on the
 * other, and falls back to the plan's attempt list (the verify tier first).
 */
export function speculative(route: SpeculativeRoute): ExecutionStrategy {
  return {
    name: 'speculative',
    source: (c) =>
      new SpeculativeGeneration(
        {
          runtime: c.runtime,
          attempts: c.attempts,
          record: c.record,
          deadline: c.deadline,
          metrics: speculationMetrics(c.metrics),
        },
        route,
      ),
  };
}

/**
 * A cascade (docs/cascade.md): the cheaper tier answers first, the plan's attempt list serves the
 * request when that answer's opening tokens are not confident enough.
 */
export function cascade(route: CascadeRoute): ExecutionStrategy {
  return {
    name: 'cascade',
    source: (c) =>
      new CascadeGeneration(
        {
          runtime: c.runtime,
          attempts: c.attempts,
          record: c.record,
          deadline: c.deadline,
          metrics: c.metrics.cascade,
        },
        route,
      ),
  };
}

/** The strategy for a plan: speculative or a cascade when the plan says so, else the attempt list. */
export function strategyFor(plan: RoutePlan): ExecutionStrategy {
  if (plan.speculative !== undefined) return speculative(plan.speculative);
  return plan.cascade === undefined ? ATTEMPT_LIST : cascade(plan.cascade);
}
