import { unfinished, type GenerationSource, type TierEventSink } from '../pipeline/source.js';
import type { RouteAttempt } from '../routing/plan.js';
import type { GenerateRequest } from '../tiers/tier.js';
import { AllTiersFailedError, causeOf, isRetryable, ResilienceError, type FailureCause } from './errors.js';
import type { ResilienceRuntime } from './resilience-runtime.js';
import { Cancellation, type CancelSignal } from '../tiers/cancellation.js';

/**
 * One entry of a RoutePlan's ordered attempt list (chosen tier first, then fallbacks): its
 * `deadlineMs` is the time the attempt may take from its start; 0 = only the request deadline.
 */
export type AttemptSpec = RouteAttempt;

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
  /** True when this part ended the choice (finish event). */
  finished: boolean;
}

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

type Stage = 'before_first_token' | 'mid_stream';

export function newExecutionRecord(): ExecutionRecord {
  return { servedBy: [], continuedFrom: undefined, fallbacks: [], retries: 0, parts: [] };
}

/**
 * Runs one generation over an ordered attempt list with the tiers' breakers, admission control,
 * retry budget and deadlines: the pipeline's GenerationSource (src/pipeline/source.ts).
 *
 * - Before the first token, a failed attempt moves to the next tier only while the request's
 *   deadline has time left and the retry budget allows it; a tier skipped because its breaker is
 *   open or it shed the request costs nothing and needs no budget.
 * - After tokens were streamed, a failure continues on the next tier from prompt + tokens sent
 *   (maxTokens reduced): every tier shares the tokenizer, so greedy output is unchanged. This is
 *   not charged to the budget: the client already holds half an answer.
 */
export class ResilientGeneration implements GenerationSource {
  readonly name: string;
  private readonly deadline: number;

  constructor(
    private readonly runtime: ResilienceRuntime,
    private readonly attempts: readonly AttemptSpec[],
    readonly record: ExecutionRecord,
    /** Absolute deadline (ms since the epoch) of the whole request; default from config. */
    deadline?: number,
  ) {
    this.name = attempts[0]?.tier ?? 'none';
    this.deadline = deadline ?? Date.now() + runtime.requestTimeoutMs;
    runtime.retryBudget.deposit();
  }

  /**
   * Runs the attempts, pushing the serving tier's events to `sink` (the pipeline's decoder) from
   * the one loop over the tier's stream: no generator of its own between the tier and the sink.
   */
  async run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void> {
    const { runtime, record } = this;
    const m = runtime.metrics;
    // The tokens already streamed, as the tier's own arrays (copied only for a continuation).
    const sent: (readonly number[])[] = [];
    let sentCount = 0;
    const tried: string[] = [];
    let lastError: unknown;
    /** True once an attempt actually ran on a tier and failed (so the next one is a retry). */
    let issuedAndFailed = false;

    const noteFallback = (from: string, cause: FailureCause): void => {
      const stage: Stage = sentCount > 0 ? 'mid_stream' : 'before_first_token';
      record.fallbacks.push({ from, to: undefined, cause, stage });
    };

    const attempts = this.attempts;
    for (let index = 0; index < attempts.length; index++) {
      const attempt = attempts[index]!;
      const guard = runtime.guard(attempt.tier);
      if (guard === undefined) continue;
      if (signal.aborted) throw signal.reason;
      if (Date.now() >= this.deadline) break;
      if (issuedAndFailed && sentCount === 0) {
        if (!runtime.retryBudget.tryWithdraw()) {
          m.retries.inc({ tier: guard.name, result: 'budget_exhausted' });
          break;
        }
        m.retries.inc({ tier: guard.name, result: 'attempted' });
        record.retries++;
      }
      // The previous tier's failure becomes a fallback only now that another tier is tried.
      const pending = record.fallbacks.at(-1);
      if (pending !== undefined && pending.to === undefined) {
        pending.to = guard.name;
        m.fallbacks.inc({ from: pending.from, to: guard.name, cause: pending.cause, stage: pending.stage });
      }
      tried.push(guard.name);

      const ticket = guard.breaker.tryAcquire();
      if (ticket === undefined) {
        lastError = new ResilienceError(
          'TIERGATE_ERR_BREAKER_OPEN',
          `tier "${guard.name}" is failing; its circuit breaker is open`,
          guard.name,
          Math.ceil(guard.settings.breaker.resetTimeoutMs / 1000),
        );
        noteFallback(guard.name, 'breaker_open');
        continue;
      }
      let release: (() => void) | undefined;
      try {
        release = guard.admission.tryAcquire() ?? (await guard.admission.acquire(this.deadline, signal));
      } catch (err) {
        ticket.neutral();
        if (signal.aborted) throw signal.reason;
        lastError = err;
        m.shed.inc({
          tier: guard.name,
          reason:
            (err as ResilienceError).code === 'TIERGATE_ERR_SHED_QUEUE_FULL' ? 'queue_full' : 'deadline',
        });
        noteFallback(guard.name, 'shed');
        continue;
      }

      // One attempt on this tier, inline rather than a generator of its own: every event of
      // the request passes through here, and each generator layer costs it a few promises.
      const deadlineMs = attemptLimit(
        // The plan's budget does not bind the final attempt: cutting it would turn a slow answer
        // into no answer. The tier's own attemptTimeoutMs (hang protection) does.
        index === attempts.length - 1 ? 0 : attempt.deadlineMs,
        guard.settings.attemptTimeoutMs,
      );
      const now = Date.now();
      const startedAt = performance.now();
      const attemptEnd = deadlineMs > 0 ? Math.min(this.deadline, now + deadlineMs) : this.deadline;
      const local = new Cancellation();
      const timer = runtime.deadlines.watch(attemptEnd, () =>
        local.abort(this.timeoutError(guard.name, attemptEnd, deadlineMs)),
      );
      const onAbort = (): void => local.abort(signal.reason);
      signal.addEventListener('abort', onAbort, ONCE);
      const remaining = request.maxTokens - sentCount;
      let failure: unknown;
      // The sink's own error (the consumer gave up) is not the tier's: rethrown after cleanup.
      let consumerError: { readonly err: unknown } | undefined;
      try {
        if (remaining <= 0) {
          // The previous tier died after the last token but before its finish event.
          ticket.neutral();
          try {
            await sink({ kind: 'finish', reason: 'length' });
          } catch (err) {
            consumerError = { err };
          }
          if (consumerError === undefined) return;
        } else {
          const events = guard.tier.generate(
            // The tier sees the prompt plus everything already sent: a seamless continuation.
            // (Field by field rather than a spread: see src/pipeline/generate-choice.ts.)
            {
              tokens: sentCount === 0 ? request.tokens : request.tokens.concat(...sent),
              sampling: request.sampling,
              maxTokens: remaining,
              stopTokens: request.stopTokens,
              topLogprobs: request.topLogprobs,
              logprobs: request.logprobs,
              deadline: this.deadline,
              requestId: request.requestId,
            },
            local.signal,
          );
          let part: ServedPart | undefined;
          for await (const event of events) {
            if (part === undefined) {
              record.servedBy.push(guard.name);
              const at = performance.now();
              part = {
                tier: guard.name,
                startedAt,
                promptTokens: request.tokens.length + sentCount,
                firstTokenAt: at,
                lastTokenAt: at,
                tokens: 0,
                finished: false,
              };
              record.parts.push(part);
            }
            if (event.kind === 'tokens') {
              sent.push(event.tokens);
              sentCount += event.tokens.length;
              part.tokens += event.tokens.length;
              if (part.tokens > event.tokens.length) part.lastTokenAt = performance.now();
            } else {
              part.finished = true;
              ticket.success();
            }
            try {
              const flow = sink(event);
              // The consumer is done (stop string): leaving the loop ends the tier's stream.
              if (flow === 'stop' || (flow !== undefined && (await flow) === 'stop')) return;
            } catch (err) {
              consumerError = { err };
              break;
            }
            if (event.kind === 'finish') return;
          }
          if (consumerError === undefined) {
            throw unfinished(guard.name);
          }
        }
      } catch (err) {
        if (signal.aborted) {
          ticket.neutral();
          throw signal.reason;
        }
        const error = local.signal.aborted ? local.signal.reason : err;
        // A bad request or a full tier queue says nothing about the tier's health.
        if (!isRetryable(error) || causeOf(error) === 'overloaded') ticket.neutral();
        else ticket.failure(error);
        if ((error as { code?: unknown }).code === 'TIERGATE_ERR_DEADLINE')
          throw new AllTiersFailedError([guard.name], error);
        failure = error;
      } finally {
        // Reached also when the consumer stops early (client gone, stop string): not the tier's fault.
        ticket.neutral();
        runtime.deadlines.cancel(timer);
        signal.removeEventListener('abort', onAbort);
        local.abort(ATTEMPT_ENDED);
        release();
      }

      if (consumerError !== undefined) throw consumerError.err;
      // The attempt failed (a finished one returned above).
      lastError = failure;
      if (!isRetryable(failure)) throw failure;
      issuedAndFailed = true;
      if (sentCount > 0) record.continuedFrom ??= guard.name;
      noteFallback(guard.name, causeOf(failure));
      runtime.logger.warn(
        { tier: guard.name, requestId: request.requestId, tokensSent: sentCount, err: failure },
        `attempt on tier "${guard.name}" failed; trying the next tier`,
      );
    }
    if (
      Date.now() >= this.deadline &&
      !(lastError instanceof ResilienceError && lastError.code === 'TIERGATE_ERR_DEADLINE')
    ) {
      lastError = new ResilienceError(
        'TIERGATE_ERR_DEADLINE',
        `the request's deadline passed (tiers tried: ${tried.join(', ') || 'none'})`,
        undefined,
      );
    }
    throw new AllTiersFailedError(tried, lastError ?? new Error('no tier could serve the request'));
  }

  /** Why an attempt's timer fired: the request's deadline, or the attempt's own limit. */
  private timeoutError(tierName: string, attemptEnd: number, deadlineMs: number): ResilienceError {
    const overall = attemptEnd >= this.deadline;
    return new ResilienceError(
      overall ? 'TIERGATE_ERR_DEADLINE' : 'TIERGATE_ERR_ATTEMPT_TIMEOUT',
      overall
        ? `the request's deadline passed on tier "${tierName}"`
        : `attempt on tier "${tierName}" timed out after ${deadlineMs} ms`,
      tierName,
    );
  }
}

/** Listener options shared by every attempt rather than allocated per request. */
const ONCE = { once: true } as const;

/**
 * Reason for ending an attempt's tier call once its stream is over. Prebuilt: `abort()` without a
 * reason creates an error with a stack trace on every request; nothing downstream inspects it.
 */
const ATTEMPT_ENDED = new Error('tiergate: attempt ended');

/** The tighter of two limits where 0 means "none". */
function attemptLimit(a: number, b: number): number {
  if (a <= 0) return b;
  if (b <= 0) return a;
  return Math.min(a, b);
}
