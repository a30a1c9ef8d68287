import type { FailureCause } from './errors.js';

/**
 * What one tier served of a request: the latency model of that tier learns from it
 * (src/service/latency-credit.ts), so a continuation teaches each tier its own part.
 */
export interface ServedPart {
  readonly tier: string;
  /** performance.now() when the attempt started (admitted). */
  readonly startedAt: number;
  /** Prompt tokens the tier was given (the prompt plus what earlier tiers sent). */
  readonly promptTokens: number;
  firstTokenAt: number;
  lastTokenAt: number;
  tokens: number;
  /**
   * Requests the tier was running, summed over this part's token events (with `occupancySamples`
   * the mean batch the part decoded in: what its per-token time is learned against). Absent: not
   * known (a speculative pair's part).
   */
  occupancySum?: number;
  /** Other tiers running anything, summed over the same events (they share the machine's cores). */
  othersBusySum?: number;
  occupancySamples?: number;
  /** True when this part ended the choice (finish event). */
  finished: boolean;
}

export type Stage = 'before_first_token' | 'mid_stream';

/** What happened to a request across its attempts: for headers, the summary log and metrics. */
export interface ExecutionRecord {
  /** Tiers that streamed tokens (or finished) for this request, in order. */
  readonly servedBy: string[];
  /** The tier that failed mid-stream and was continued from (first such tier). */
  continuedFrom: string | undefined;
  readonly fallbacks: { from: string; to: string | undefined; cause: FailureCause; stage: Stage }[];
  retries: number;
  /** Each attempt that streamed, in order (one per tier per choice). */
  readonly parts: ServedPart[];
}

export function newExecutionRecord(): ExecutionRecord {
  return { servedBy: [], continuedFrom: undefined, fallbacks: [], retries: 0, parts: [] };
}
