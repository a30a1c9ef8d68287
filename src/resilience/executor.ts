import type { GenerationSource, TierEventSink } from '../pipeline/source.js';
import type { RouteAttempt } from '../routing/plan.js';
import type { CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest } from '../tiers/tier.js';
import { runAttempt, SERVED, Streamed, type AttemptContext } from './attempt.js';
import { GatewayError } from '../errors/gateway-error.js';
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
 *   deadline has time left and the failed tier's retry budget allows it (retry-budget.ts); when
 *   the budget refuses while a tier left is predicted to fit, the request ends with a 503 saying
 *   so. A tier skipped because its breaker is open or it shed the request costs nothing and needs
 *   no budget: a request its tier's admission refuses overflows to the next tier of its plan
 *   (`tiergate_overflow_total{from,to}`), and is shed only when no tier of the plan takes it.
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
    /** The tier whose attempt ran and failed last: the next attempt is a retry it pays for. */
    let failedTier: string | undefined;
    /** True once an attempt was admitted on a tier (the request deposited into its budget). */
    let ran = false;
    /** A retry was paid for and not yet used: the tier it was for refused before running it. */
    let retryUnused = false;
    /** Tiers that refused the request before anything ran on them (admission, breaker, own queue). */
    const refusals: GatewayError[] = [];
    /** The first tier whose admission refused the request before any attempt ran: overflow's `from`. */
    let overflowFrom: string | undefined;
    for (let index = 0; index < attempts.length; index++) {
      const guard = runtime.guard(attempts[index]!.tier);
      if (guard === undefined) continue;
      if (signal.aborted) throw signal.reason;
      if (Date.now() >= this.deadline) break;
      if (failedTier !== undefined && ctx.streamed.count === 0 && !retryUnused) {
        if (!this.withdrawRetry(failedTier, guard)) {
          lastError = this.budgetRefusal(failedTier, lastError, index) ?? lastError;
          break;
        }
        retryUnused = true;
      }
      this.notePendingFallback(guard.name);
      tried.push(guard.name);
      // Admitted without a promise when the tier has a free slot and nobody waits.
      let admitted = this.admit(guard, ctx);
      if (admitted instanceof Promise) admitted = await admitted;
      if (!('ticket' in admitted)) {
        lastError = admitted.refused;
        if (!ran && admitted.cause === 'shed') overflowFrom ??= guard.name;
        if (admitted.refused instanceof GatewayError) refusals.push(admitted.refused);
        this.noteFallback(guard.name, admitted.cause, ctx);
        continue;
      }
      retryUnused = false;
      if (!ran) {
        ran = true;
        runtime.retryBudgets.deposit(guard.name);
        if (overflowFrom !== undefined) runtime.metrics.overflow.inc({ from: overflowFrom, to: guard.name });
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
      const cause = causeOf(outcome.failure);
      if (ctx.streamed.count > 0) record.continuedFrom ??= guard.name;
      // The tier's own queue was full: nothing ran, so the next tier is an overflow, not a retry.
      else if (cause === 'overloaded' && failedTier === undefined) {
        if (outcome.failure instanceof GatewayError) refusals.push(outcome.failure);
      } else failedTier = guard.name;
      this.noteFallback(guard.name, cause, ctx);
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
    } else if (!ran && refusals.length > 0) {
      // Shed: no tier of the plan could take the request.
      if (overflowFrom !== undefined) runtime.metrics.overflow.inc({ from: overflowFrom, to: 'none' });
      if (refusals.length > 1) lastError = shedEverywhere(refusals);
    }
    throw new AllTiersFailedError(tried, lastError ?? new Error('no tier could serve the request'));
  }

  /**
   * The error for a retry the failed tier's budget refused, when a tier left in the plan is
   * predicted to fit the deadline (or, in a fixed plan, which predicts nothing, simply left with
   * time to spare): a 503 that says so, instead of the attempt's own failure, which would
   * suggest no tier could have served. Undefined when no tier left would have fitted.
   */
  private budgetRefusal(failed: string, last: unknown, next: number): ResilienceError | undefined {
    const leftMs = Math.round(this.deadline - Date.now());
    for (let i = next; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      const guard = this.runtime.guard(a.tier);
      if (guard === undefined || guard.breaker.state === 'open') continue;
      if (a.predictedMs !== undefined && a.predictedMs > leftMs) continue;
      const fits =
        a.predictedMs !== undefined
          ? `tier "${a.tier}" is predicted to answer in ${a.predictedMs} ms, within the ${leftMs} ms left`
          : `tier "${a.tier}" was left to try with ${leftMs} ms before the deadline`;
      const what = last instanceof Error ? last.message : `tier "${failed}" failed`;
      return new ResilienceError(
        'TIERGATE_ERR_RETRY_BUDGET',
        `${what}; not retried because the retry budget of tier "${failed}" is spent, although ${fits}`,
        failed,
        Math.max(1, Math.ceil(this.runtime.retryBudgets.refillMs(failed) / 1000)),
        { cause: last },
      );
    }
    return undefined;
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

  /** A retry (a tier ran and failed before the first token) is paid by the failed tier's budget. */
  private withdrawRetry(failed: string, target: TierGuard): boolean {
    const m = this.runtime.metrics;
    if (!this.runtime.retryBudgets.tryWithdraw(failed)) {
      m.retries.inc({ from: failed, tier: target.name, result: 'budget_exhausted' });
      return false;
    }
    m.retries.inc({ from: failed, tier: target.name, result: 'attempted' });
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

/**
 * Every tier of the plan refused the request before anything ran: one error naming each tier's
 * refusal, of the last refusal's kind (429 when its queue was full, 503 when the wait would
 * outlast the deadline), with the soonest Retry-After any of them gave.
 */
function shedEverywhere(refusals: readonly GatewayError[]): ResilienceError {
  const last = refusals.at(-1)!;
  let retryAfter: number | undefined;
  for (const r of refusals)
    if (r.retryAfter !== undefined) retryAfter = Math.min(retryAfter ?? r.retryAfter, r.retryAfter);
  return new ResilienceError(
    'TIERGATE_ERR_SHED_EVERYWHERE',
    `no tier of the plan can take the request now: ${refusals.map((r) => r.message).join('; ')}`,
    last.tier,
    retryAfter,
    { kind: last.kind, cause: last },
  );
}

/** The tighter of two limits where 0 means "none". */
function tighter(a: number, b: number): number {
  if (a <= 0) return b;
  if (b <= 0) return a;
  return Math.min(a, b);
}
