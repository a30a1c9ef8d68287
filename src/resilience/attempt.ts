import { unfinished, type TierEventSink } from '../pipeline/source.js';
import { Cancellation, type CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest } from '../tiers/tier.js';
import { AllTiersFailedError, causeOf, isRetryable, ResilienceError } from './errors.js';
import type { ExecutionRecord, ServedPart } from './execution-record.js';
import type { ResilienceRuntime, TierGuard } from './resilience-runtime.js';
import type { BreakerTicket } from './tier-breaker.js';

/** The tokens a request has streamed so far, over all its attempts (kept for a continuation). */
export class Streamed {
  /** The tier's own arrays, uncopied (the Tier contract makes them the consumer's). */
  readonly chunks: (readonly number[])[] = [];
  count = 0;

  /** The prompt for the next tier: the original, plus everything already sent. */
  promptAfter(tokens: readonly number[]): readonly number[] {
    return this.count === 0 ? tokens : tokens.concat(...this.chunks);
  }
}

/** What one attempt needs besides its tier: the request, its consumer and its limits. */
export interface AttemptContext {
  readonly runtime: ResilienceRuntime;
  readonly record: ExecutionRecord;
  readonly request: GenerateRequest;
  readonly signal: CancelSignal;
  readonly sink: TierEventSink;
  readonly streamed: Streamed;
  /** Absolute deadline of the whole request (ms since the epoch). */
  readonly deadline: number;
}

/** The attempt served the request to its end (finish event, or the consumer's 'stop'). */
export const SERVED = Symbol('served');

/**
 * One attempt on one tier, admitted (breaker ticket and admission slot held): runs the tier's
 * stream under the attempt's time limit, pushing each event to the sink. Resolves SERVED, or the
 * tier's failure for the caller to fail over on; rejects with what must end the request (the
 * request's abort, the consumer's own error, the request's deadline, a non-retryable failure is
 * returned for the caller to throw). Frees the ticket, the timer and the slot in one place.
 */
export async function runAttempt(
  ctx: AttemptContext,
  guard: TierGuard,
  ticket: BreakerTicket,
  release: () => void,
  /** ms the attempt may take; 0 = only the request deadline. */
  limitMs: number,
): Promise<typeof SERVED | { readonly failure: unknown }> {
  const { runtime, signal, deadline } = ctx;
  const attemptEnd = limitMs > 0 ? Math.min(deadline, Date.now() + limitMs) : deadline;
  const local = new Cancellation();
  const timer = runtime.deadlines.watch(attemptEnd, () =>
    local.abort(timeoutError(guard.name, attemptEnd >= deadline, limitMs)),
  );
  const onAbort = (): void => local.abort(signal.reason);
  signal.addEventListener('abort', onAbort, ONCE);
  // The sink's own error (the consumer gave up) is not the tier's: rethrown after cleanup.
  let consumerError: { readonly err: unknown } | undefined;
  // The tier's stream is iterated here, inline: every event of the request passes through this
  // loop, and each async layer (a generator, a helper's promise) would cost it promises.
  try {
    const { request, sink, streamed } = ctx;
    const remaining = request.maxTokens - streamed.count;
    if (remaining <= 0) {
      // The previous tier died after the last token but before its finish event.
      ticket.neutral();
      try {
        await sink({ kind: 'finish', reason: 'length' });
        return SERVED;
      } catch (err) {
        consumerError = { err };
      }
    } else {
      const events = guard.tier.generate(
        // The tier sees the prompt plus everything already sent: a seamless continuation.
        // (Field by field rather than a spread: see src/pipeline/generate-choice.ts.)
        {
          tokens: streamed.promptAfter(request.tokens),
          sampling: request.sampling,
          maxTokens: remaining,
          stopTokens: request.stopTokens,
          topLogprobs: request.topLogprobs,
          logprobs: request.logprobs,
          deadline,
          requestId: request.requestId,
        },
        local.signal,
      );
      const startedAt = performance.now();
      let part: ServedPart | undefined;
      for await (const event of events) {
        part ??= servedPart(ctx, guard.name, startedAt);
        if (event.kind === 'tokens') {
          streamed.chunks.push(event.tokens);
          streamed.count += event.tokens.length;
          part.tokens += event.tokens.length;
          part.occupancySum! += guard.admission.running;
          part.othersBusySum! += runtime.busyTiers() - 1;
          part.occupancySamples!++;
          if (part.tokens > event.tokens.length) part.lastTokenAt = performance.now();
        } else {
          part.finished = true;
          ticket.success();
        }
        try {
          const flow = sink(event);
          // The consumer is done (stop string): leaving the loop ends the tier's stream.
          if (flow === 'stop' || (flow !== undefined && (await flow) === 'stop')) return SERVED;
        } catch (err) {
          consumerError = { err };
          break;
        }
        if (event.kind === 'finish') return SERVED;
      }
      if (consumerError === undefined) throw unfinished(guard.name);
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
    return { failure: error };
  } finally {
    // Reached also when the consumer stops early (client gone, stop string): not the tier's fault.
    ticket.neutral();
    runtime.deadlines.cancel(timer);
    signal.removeEventListener('abort', onAbort);
    local.abort(ATTEMPT_ENDED);
    release();
  }
  throw consumerError!.err;
}

/** The tier starts serving the request: recorded for headers, logs and its latency model. */
function servedPart(ctx: AttemptContext, tier: string, startedAt: number): ServedPart {
  ctx.record.servedBy.push(tier);
  const at = performance.now();
  const part: ServedPart = {
    tier,
    startedAt,
    promptTokens: ctx.request.tokens.length + ctx.streamed.count,
    firstTokenAt: at,
    lastTokenAt: at,
    tokens: 0,
    occupancySum: 0,
    othersBusySum: 0,
    occupancySamples: 0,
    finished: false,
  };
  ctx.record.parts.push(part);
  return part;
}

/** Why an attempt's timer fired: the request's deadline, or the attempt's own limit. */
function timeoutError(tier: string, overall: boolean, limitMs: number): ResilienceError {
  return new ResilienceError(
    overall ? 'TIERGATE_ERR_DEADLINE' : 'TIERGATE_ERR_ATTEMPT_TIMEOUT',
    overall
      ? `the request's deadline passed on tier "${tier}"`
      : `attempt on tier "${tier}" timed out after ${limitMs} ms`,
    tier,
  );
}

/** Listener options shared by every attempt rather than allocated per request. */
const ONCE = { once: true } as const;

/**
 * Reason for ending an attempt's tier call once its stream is over. Prebuilt: `abort()` without a
 * reason creates an error with a stack trace on every request; nothing downstream inspects it.
 */
const ATTEMPT_ENDED = new Error('tiergate: attempt ended');
