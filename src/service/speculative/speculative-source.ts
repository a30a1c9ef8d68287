import type { GenerationSource, TierEventSink } from '../../pipeline/source.js';
import type { ExecutionRecord, ServedPart } from '../../resilience/executor.js';
import { AllTiersFailedError, causeOf, isRetryable, ResilienceError } from '../../resilience/errors.js';
import type { ResilienceRuntime } from '../../resilience/resilience-runtime.js';
import type { RouteAttempt, SpeculativeRoute } from '../../routing/plan.js';
import { pairName } from '../../routing/speculative-route.js';
import { Cancellation, type CancelSignal } from '../../tiers/cancellation.js';
import type { GenerateRequest } from '../../tiers/tier.js';
import { continueOnAttempts } from '../continue-attempts.js';
import { PairAdmission, type Held } from './pair-admission.js';
import { speculate, type Ending } from './speculate.js';
import type { SpeculationMetrics } from './speculation-metrics.js';

/** What the source runs with (src/service/strategy.ts StrategyContext, plus the pair's metrics). */
export interface SpeculativeContext {
  readonly runtime: ResilienceRuntime;
  /** The plan's attempts: the verify tier first, then its fallbacks. */
  readonly attempts: readonly RouteAttempt[];
  readonly record: ExecutionRecord;
  readonly deadline: number | undefined;
  readonly metrics: SpeculationMetrics;
}

/**
 * The speculative strategy's GenerationSource (docs/speculative.md): admits
 * the request on both tiers, runs the draft/verify loop (speculate.ts) under the attempt's time
 * limit, and hands what is left to the plain attempt list (src/resilience/executor.ts), as a
 * mid-stream continuation from the tokens already sent, when speculation cannot start, stops
 * paying (the verify tier saturated) or one side fails: the draft tier's failure continues on
 * the verify tier, the verify tier's on the plan's fallbacks.
 */
export class SpeculativeGeneration implements GenerationSource {
  readonly name: string;
  private readonly deadline: number;

  constructor(
    private readonly context: SpeculativeContext,
    private readonly route: SpeculativeRoute,
  ) {
    this.name = pairName(route);
    this.deadline = context.deadline ?? Date.now() + context.runtime.requestTimeoutMs;
  }

  async run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void> {
    const { runtime, attempts, metrics } = this.context;
    const admission = new PairAdmission(runtime, this.route);
    const held = admission.tryAdmit();
    if ('refused' in held) {
      metrics.requests.inc({ pair: this.name, outcome: held.refused });
      return this.plain(attempts, request, [], signal, sink);
    }
    const sent: number[] = [];
    let ending: Ending;
    const local = new Cancellation();
    const onAbort = (): void => local.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const limitMs = attemptLimit(attempts, held);
    const end = limitMs > 0 ? Math.min(this.deadline, Date.now() + limitMs) : this.deadline;
    const timer = runtime.deadlines.watch(end, () =>
      local.abort(timeout(this.name, end >= this.deadline, limitMs)),
    );
    // The pair's attempt starts now (its verify slot held), not at its first token: the latency
    // credit takes the time before this as the wait for admission (src/service/latency-credit.ts).
    const startedAt = performance.now();
    try {
      ending = await speculate({
        request,
        signal: local.signal,
        sink,
        held,
        route: this.route,
        sent,
        part: () => this.servedPart(request, sent.length, startedAt),
        metrics,
        pair: this.name,
        deadline: this.deadline,
        saturated: () => admission.saturated(),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // The attempt's own limit or the request's deadline fired: the verify attempt failed.
      const reason: unknown = local.aborted ? local.reason : undefined;
      if (!(reason instanceof ResilienceError)) throw err;
      ending = { kind: 'verify_failed', outcome: 'handed_over_verify_failed', error: reason };
    } finally {
      // Settles what speculate() left open (a consumer's stop, an error); a settled ticket ignores it.
      held.neutral();
      runtime.deadlines.cancel(timer);
      signal.removeEventListener('abort', onAbort);
      local.abort(ENDED);
      held.release();
    }
    if (ending.kind === 'served') return;
    metrics.requests.inc({ pair: this.name, outcome: ending.outcome });
    if (ending.kind === 'saturated') return this.plain(attempts, request, sent, signal, sink);
    const failure = ending.error;
    if (signal.aborted) throw signal.reason;
    if ((failure as { code?: unknown }).code === 'TIERGATE_ERR_DEADLINE')
      throw new AllTiersFailedError([this.name], failure);
    if (!isRetryable(failure)) throw failure;
    const failed = ending.kind === 'draft_failed' ? this.route.draft : this.route.verify;
    this.noteFallback(failed, failure, sent.length);
    runtime.logger.warn(
      { tier: failed, pair: this.name, requestId: request.requestId, tokensSent: sent.length, err: failure },
      `speculation: tier "${failed}" failed; continuing without it`,
    );
    // The draft tier's failure leaves the verify tier serving; the verify tier's, its fallbacks.
    const rest = ending.kind === 'draft_failed' ? attempts : attempts.slice(1);
    if (rest.length === 0) throw new AllTiersFailedError([this.name], failure);
    return this.plain(rest, request, sent, signal, sink);
  }

  /** The plain attempt list from where speculation left off (the tokens already sent). */
  private plain(
    attempts: readonly RouteAttempt[],
    request: GenerateRequest,
    sent: readonly number[],
    signal: CancelSignal,
    sink: TierEventSink,
  ): Promise<void> {
    const { runtime, record } = this.context;
    return continueOnAttempts(runtime, attempts, record, this.deadline, request, sent, signal, sink);
  }

  /** The pair starts serving: recorded for headers, logs and the pair's latency model. */
  private servedPart(request: GenerateRequest, sent: number, startedAt: number): ServedPart {
    const { record } = this.context;
    record.servedBy.push(this.name);
    const at = performance.now();
    const part: ServedPart = {
      tier: this.name,
      startedAt,
      promptTokens: request.tokens.length + sent,
      firstTokenAt: at,
      lastTokenAt: at,
      tokens: 0,
      finished: false,
    };
    record.parts.push(part);
    return part;
  }

  private noteFallback(from: string, failure: unknown, sent: number): void {
    const { record, runtime } = this.context;
    const stage = sent > 0 ? 'mid_stream' : 'before_first_token';
    const to = from === this.route.draft ? this.route.verify : this.context.attempts[1]?.tier;
    if (sent > 0) record.continuedFrom ??= from;
    record.fallbacks.push({ from, to, cause: causeOf(failure), stage });
    if (to !== undefined) runtime.metrics.fallbacks.inc({ from, to, cause: causeOf(failure), stage });
  }
}

/** The verify attempt's own limit (the plan's, unless it is the last attempt; and the tier's). */
function attemptLimit(attempts: readonly RouteAttempt[], held: Held): number {
  const own = attempts.length > 1 ? (attempts[0]?.deadlineMs ?? 0) : 0;
  const tier = held.verify.guard.settings.attemptTimeoutMs;
  if (own <= 0) return tier;
  return tier <= 0 ? own : Math.min(own, tier);
}

function timeout(pair: string, overall: boolean, limitMs: number): ResilienceError {
  return new ResilienceError(
    overall ? 'TIERGATE_ERR_DEADLINE' : 'TIERGATE_ERR_ATTEMPT_TIMEOUT',
    overall
      ? `the request's deadline passed on tiers "${pair}"`
      : `speculation on tiers "${pair}" timed out after ${limitMs} ms`,
    pair,
  );
}

/** Reason for ending the kept sequences once the loop is over (nothing inspects it). */
const ENDED = new Error('tiergate: speculation ended');
