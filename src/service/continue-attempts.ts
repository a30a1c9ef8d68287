import type { TierEventSink } from '../pipeline/source.js';
import { ResilientGeneration, type ExecutionRecord } from '../resilience/executor.js';
import type { ResilienceRuntime } from '../resilience/resilience-runtime.js';
import type { RouteAttempt } from '../routing/plan.js';
import type { CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest } from '../tiers/tier.js';

/**
 * Runs a plan's attempt list for what is left of a request after `sent` tokens reached the client
 * (none: from scratch): the prompt grows by them and max_tokens shrinks. How a strategy that
 * served part of an answer some other way (speculation, a cascade's first tier) hands the rest to
 * plain decoding; every tier shares the tokenizer, so a greedy answer is unchanged.
 */
export function continueOnAttempts(
  runtime: ResilienceRuntime,
  attempts: readonly RouteAttempt[],
  record: ExecutionRecord,
  deadline: number | undefined,
  request: GenerateRequest,
  sent: readonly number[],
  signal: CancelSignal,
  sink: TierEventSink,
): Promise<void> {
  const remaining = request.maxTokens - sent.length;
  if (remaining <= 0) {
    const flow = sink({ kind: 'finish', reason: 'length' });
    return flow instanceof Promise ? flow.then(() => undefined) : Promise.resolve();
  }
  // Field by field rather than a spread: see src/pipeline/generate-choice.ts.
  const rest: GenerateRequest = {
    tokens: sent.length === 0 ? request.tokens : request.tokens.concat(sent),
    sampling: request.sampling,
    maxTokens: remaining,
    stopTokens: request.stopTokens,
    topLogprobs: request.topLogprobs,
    logprobs: request.logprobs,
    deadline: request.deadline,
    requestId: request.requestId,
  };
  return new ResilientGeneration(runtime, attempts, record, deadline).run(rest, signal, sink);
}
