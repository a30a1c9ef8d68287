import type { GenerationSource, TierEventSink } from '../pipeline/source.js';
import type { RouteAttempt } from '../routing/plan.js';
import type { CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest } from '../tiers/tier.js';
import { runAttempt, SERVED, Streamed, type AttemptContext } from './attempt.js';
import { AllTiersFailedError, causeOf, isRetryable, ResilienceError, type FailureCause } from './errors.js';
import type { ExecutionRecord, Stage } from './execution-record.js';
import type { ResilienceRuntime, TierGuard } from './resilience-runtime.js';
import type { BreakerTicket } from './tier-breaker.js';

export { newExecutionRecord, type ExecutionRecord, type ServedPart } from './execution-record.js';

/**
 * One entry of a RoutePlan's ordered attempt list (chosen tier first, then fallbacks): its
 * `deadlineMs` is the time the attempt may take from its start; 0 = only the request deadline.
 */
export type AttemptSpec = RouteAttempt;

/**
 * Runs one generation over an ordered attempt list with the tiers' breakers, admission control,
 * retry budget and deadlines: the pipeline's GenerationSource (src/pipeline/source.ts), and the
 * attempt-list strategy of an Execution (src/service/strategy.ts).
 *
 * - Before the first token, a failed attempt moves to the next tier only while the request's
 *   deadline has time left and the retry budget allows it; a tier skipped because its breaker is
 *   open or it shed the request costs nothing and needs no budget.
 * - After tokens were streamed, a failure continues on the next tier from prompt + tokens sent
 *   (maxTokens reduced): every tier shares the tokenizer, so greedy output is unchanged. This is
 *   not charged to the budget: the client already holds half an answer.
 *
 * One attempt (its timer, the tier's stream, the ticket and the slot) is src/resilience/attempt.ts.
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
    const { runtime, record, attempts } = this;
    const ctx: AttemptContext = {
      runtime,
      record,
      request,
      signal,
      sink,
      streamed: new Streamed(),
      deadline: this.deadline,
    };
    const tried: string[] = [];
    let lastError: unknown;
    /** True once an attempt actually ran on a tier and failed (so the next one is a retry). */
    let issuedAndFailed = false;
    for (let index = 0; index < attempts.length; index++) {
      const guard = runtime.guard(attempts[index]!.tier);
      if (guard === undefined) continue;
      if (signal.aborted) throw signal.reason;
      if (Date.now() >= this.deadline) break;
      if (issuedAndFailed && ctx.streamed.count === 0 && !this.withdrawRetry(guard)) break;
      this.notePendingFallback(guard.name);
      tried.push(guard.name);
      // Admitted without a promise when the tier has a free slot and nobody waits.
      let admitted = this.admit(guard, ctx);
      if (admitted instanceof Promise) admitted = await admitted;
      if (!('ticket' in admitted)) {
        lastError = admitted.refused;
        this.noteFallback(guard.name, admitted.cause, ctx);
        continue;
      }
      // The plan's budget does not bind the final attempt: cutting it would turn a slow answer
      // into no answer. The tier's own attemptTimeoutMs (hang protection) does.
      const limitMs = tighter(
        index === attempts.length - 1 ? 0 : attempts[index]!.deadlineMs,
        guard.settings.attemptTimeoutMs,
      );
      const outcome = await runAttempt(ctx, guard, admitted.ticket, admitted.release, limitMs);
      if (outcome === SERVED) return;
      lastError = outcome.failure;
      if (!isRetryable(outcome.failure)) throw outcome.failure;
      issuedAndFailed = true;
      if (ctx.streamed.count > 0) record.continuedFrom ??= guard.name;
      this.noteFallback(guard.name, causeOf(outcome.failure), ctx);
      runtime.logger.warn(
        {
          tier: guard.name,
          requestId: request.requestId,
          tokensSent: ctx.streamed.count,
          err: outcome.failure,
        },
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

  /** A breaker ticket and an admission slot on the tier, or why it refused (nothing ran there). */
  private admit(guard: TierGuard, ctx: AttemptContext): Admission | Promise<Admission> {
    const ticket = guard.breaker.tryAcquire();
    if (ticket === undefined) {
      const refused = new ResilienceError(
        'TIERGATE_ERR_BREAKER_OPEN',
        `tier "${guard.name}" is failing; its circuit breaker is open`,
        guard.name,
        Math.ceil(guard.settings.breaker.resetTimeoutMs / 1000),
      );
      return { refused, cause: 'breaker_open' };
    }
    const free = guard.admission.tryAcquire();
    if (free !== undefined) return { ticket, release: free };
    return guard.admission.acquire(this.deadline, ctx.signal).then(
      (release): Admission => ({ ticket, release }),
      (err: unknown): Admission => {
        ticket.neutral();
        if (ctx.signal.aborted) throw ctx.signal.reason;
        this.runtime.metrics.shed.inc({
          tier: guard.name,
          reason:
            (err as ResilienceError).code === 'TIERGATE_ERR_SHED_QUEUE_FULL' ? 'queue_full' : 'deadline',
        });
        return { refused: err, cause: 'shed' };
      },
    );
  }

  /** A retry (a tier ran and failed before the first token) needs the retry budget. */
  private withdrawRetry(guard: TierGuard): boolean {
    const m = this.runtime.metrics;
    if (!this.runtime.retryBudget.tryWithdraw()) {
      m.retries.inc({ tier: guard.name, result: 'budget_exhausted' });
      return false;
    }
    m.retries.inc({ tier: guard.name, result: 'attempted' });
    this.record.retries++;
    return true;
  }

  /** The previous tier's failure becomes a fallback only now that another tier is tried. */
  private notePendingFallback(to: string): void {
    const pending = this.record.fallbacks.at(-1);
    if (pending === undefined || pending.to !== undefined) return;
    pending.to = to;
    this.runtime.metrics.fallbacks.inc({
      from: pending.from,
      to,
      cause: pending.cause,
      stage: pending.stage,
    });
  }

  private noteFallback(from: string, cause: FailureCause, ctx: AttemptContext): void {
    const stage: Stage = ctx.streamed.count > 0 ? 'mid_stream' : 'before_first_token';
    this.record.fallbacks.push({ from, to: undefined, cause, stage });
  }
}

type Admission =
  | { readonly ticket: BreakerTicket; readonly release: () => void }
  | { readonly refused: unknown; readonly cause: FailureCause };

/** The tighter of two limits where 0 means "none". */
function tighter(a: number, b: number): number {
  if (a <= 0) return b;
  if (b <= 0) return a;
  return Math.min(a, b);
}
