import type { CascadeSeries } from '../../observability/metrics.js';
import type { Flow, GenerationSource, TierEventSink } from '../../pipeline/source.js';
import { AllTiersFailedError, causeOf, isRetryable } from '../../resilience/errors.js';
import { newExecutionRecord, ResilientGeneration, type ExecutionRecord } from '../../resilience/executor.js';
import type { ResilienceRuntime } from '../../resilience/resilience-runtime.js';
import { cascadeName } from '../../routing/cascade-route.js';
import type { CascadeRoute, RouteAttempt } from '../../routing/plan.js';
import type { CancelSignal } from '../../tiers/cancellation.js';
import type { GenerateRequest, TierEvent, TokenEvent } from '../../tiers/tier.js';
import { continueOnAttempts } from '../continue-attempts.js';
import { Probe } from './probe.js';

/** How a cascaded choice ran, for the `outcome` label (docs/cascade.md "Metrics"). */
type CascadeOutcome =
  /** The first tier was confident: its answer was kept. */
  | 'kept'
  /** The first tier's probe was below the threshold: the request escalated. */
  | 'escalated'
  /** The first tier failed or refused before its answer was judged: the request escalated. */
  | 'first_failed';

/** What the source runs with (src/service/strategy.ts StrategyContext, plus the cascade's metrics). */
export interface CascadeContext {
  readonly runtime: ResilienceRuntime;
  /** The plan's attempts: the escalation tier first, then its fallbacks. */
  readonly attempts: readonly RouteAttempt[];
  readonly record: ExecutionRecord;
  readonly deadline: number | undefined;
  readonly metrics: CascadeSeries;
}

/**
 * The cascade strategy's GenerationSource (docs/cascade.md). The first tier generates with its
 * token logprobs (and the runner-up's, for the margin rule); its first `probeTokens` tokens are
 * held back from the client and judged (probe.ts). Confident: they are released and the first tier serves the whole answer. Not
 * confident, or the first tier failed before the verdict: its stream is stopped (its slot freed)
 * and the plan's attempt list serves the request from scratch, so the client only ever sees the
 * answer kept. A failure of the first tier after its answer was kept continues mid-stream on the
 * plan's attempts, as any failover does.
 */
export class CascadeGeneration implements GenerationSource {
  readonly name: string;

  constructor(
    private readonly context: CascadeContext,
    private readonly route: CascadeRoute,
  ) {
    this.name = cascadeName(route);
  }

  async run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void> {
    const { runtime, record, deadline, metrics } = this.context;
    const { first, probeTokens, signal: rule, threshold } = this.route;
    // The first tier's own record: merged into the request's only for an answer that was kept, so
    // headers and the summary log name the tier whose tokens the client received.
    const scratch = newExecutionRecord();
    const probe = new Probe(Math.min(probeTokens, Math.max(1, request.maxTokens)), rule, threshold);
    // The rule may need alternatives the client did not ask for: those are cut off what it gets.
    const topLogprobs = Math.max(request.topLogprobs, Probe.topLogprobsFor(rule));
    const trim = topLogprobs > request.topLogprobs ? request.topLogprobs : undefined;
    const held: TierEvent[] = [];
    const sent: number[] = [];
    let verdict = 'pending' as 'pending' | 'keep' | 'escalate';
    const pass: TierEventSink = (event) => {
      if (event.kind !== 'tokens') return sink(event);
      for (const t of event.tokens) sent.push(t);
      return sink(trim === undefined ? event : withTop(event, trim));
    };
    const firstSink: TierEventSink = (event) => {
      if (verdict === 'keep') return pass(event);
      held.push(event);
      if (event.kind === 'tokens') probe.add(event);
      if (!probe.full && event.kind !== 'finish') return;
      if (!Number.isNaN(probe.score))
        metrics.probe.observe({ cascade: this.name, signal: rule }, probe.score);
      if (!probe.confident()) {
        verdict = 'escalate';
        return 'stop';
      }
      verdict = 'keep';
      record.servedBy.push(...scratch.servedBy);
      record.parts.push(...scratch.parts);
      return release(held, pass);
    };
    const firstRequest: GenerateRequest = {
      tokens: request.tokens,
      sampling: request.sampling,
      maxTokens: request.maxTokens,
      stopTokens: request.stopTokens,
      topLogprobs,
      logprobs: true,
      deadline: request.deadline,
      requestId: request.requestId,
    };
    let failure: unknown;
    try {
      await new ResilientGeneration(runtime, [{ tier: first, deadlineMs: 0 }], scratch, deadline).run(
        firstRequest,
        signal,
        firstSink,
      );
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      failure = err instanceof AllTiersFailedError ? err.last : err;
    }
    if (verdict === 'keep') {
      if (failure === undefined) return this.count('kept');
      // Kept, then failed mid-stream: continue from what the client has, as any failover does.
      this.count('kept');
      if (!isRetryable(failure)) throw failure;
      record.continuedFrom ??= first;
      this.noteFallback(failure, 'mid_stream');
      return this.escalate(request, sent, signal, sink);
    }
    // The first tier's part still teaches its latency model (src/service/latency-credit.ts).
    record.parts.push(...scratch.parts);
    if (failure !== undefined) {
      if (!isRetryable(failure)) throw failure;
      this.count('first_failed');
      this.noteFallback(failure, 'before_first_token');
      runtime.logger.warn(
        { tier: first, cascade: this.name, requestId: request.requestId, err: failure },
        `cascade: tier "${first}" failed before its answer was judged; escalating`,
      );
    } else {
      this.count('escalated');
      const discarded = held.reduce((n, e) => n + (e.kind === 'tokens' ? e.tokens.length : 0), 0);
      metrics.discarded.inc({ cascade: this.name }, discarded);
    }
    return this.escalate(request, [], signal, sink);
  }

  /** The plan's attempt list, from scratch or (after a kept answer failed) from the tokens sent. */
  private escalate(
    request: GenerateRequest,
    sent: readonly number[],
    signal: CancelSignal,
    sink: TierEventSink,
  ): Promise<void> {
    const { runtime, attempts, record, deadline } = this.context;
    return continueOnAttempts(runtime, attempts, record, deadline, request, sent, signal, sink);
  }

  private count(outcome: CascadeOutcome): void {
    this.context.metrics.requests.inc({ cascade: this.name, outcome });
  }

  private noteFallback(failure: unknown, stage: 'before_first_token' | 'mid_stream'): void {
    const { record, runtime, attempts } = this.context;
    const from = this.route.first;
    const to = attempts[0]?.tier;
    record.fallbacks.push({ from, to, cause: causeOf(failure), stage });
    if (to !== undefined) runtime.metrics.fallbacks.inc({ from, to, cause: causeOf(failure), stage });
  }
}

/** The event with `count` alternatives per token (none when 0). */
function withTop(event: TokenEvent, count: number): TokenEvent {
  return {
    kind: 'tokens',
    tokens: event.tokens,
    logprobs: event.logprobs,
    top: count === 0 ? undefined : event.top?.map((alternatives) => alternatives.slice(0, count)),
  };
}

/** Passes the held events on in order, honouring the sink's back-pressure and its 'stop'. */
function release(events: readonly TierEvent[], sink: TierEventSink, from = 0): Flow {
  for (let i = from; i < events.length; i++) {
    const flow = sink(events[i]!);
    if (flow === 'stop') return 'stop';
    if (flow instanceof Promise)
      return flow.then((r): Flow => (r === 'stop' ? 'stop' : release(events, sink, i + 1)));
  }
  return undefined;
}
