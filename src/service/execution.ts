import { asGatewayError, GatewayError } from '../errors/gateway-error.js';
import type { RateLimitInfo } from '../errors/rate-limit.js';
import type { Gateway } from '../gateway/gateway.js';
import type { KeyAdmission, KeyLimiter } from '../limits/key-limiter.js';
import { ANONYMOUS } from '../limits/key-limits.js';
import {
  holdTraceContext,
  releaseTraceContext,
  type TraceSpan,
  type Tracing,
} from '../observability/tracing.js';
import { spendOf } from '../limits/spend.js';
import { execute, progressOf, type ChoiceEventHandler, type ExecutionSummary } from '../pipeline/execute.js';
import type { GenerationRequest, Usage } from '../pipeline/types.js';
import { newExecutionRecord, type ExecutionRecord } from '../resilience/executor.js';
import type { RoutePlan } from '../routing/plan.js';
import { outputTier } from '../routing/speculative-route.js';
import { Cancellation } from '../tiers/cancellation.js';
import type { Tier } from '../tiers/tier.js';
import type { GenerationInput } from './generation-input.js';
import { buildGenerationRequest } from './generation-request.js';
import { latencyCredits } from './latency-credit.js';
import { MeteredSource } from './metered-source.js';
import { attemptSpans, endRequestSpan, endRouteSpan, startRequestSpan } from './request-span.js';
import { planRequest } from './plan-request.js';
import type { RouteMetrics } from './route-metrics.js';

/** What the service lends each execution: its route metrics, and a call when the execution settles. */
export interface ExecutionHost {
  readonly routeMetrics: RouteMetrics;
  /** Per-key limits (docs/governance.md): a request is admitted under them when it runs. */
  readonly limits: KeyLimiter;
  /** OpenTelemetry tracing when `tracing.enabled` (docs/tracing.md), else undefined. */
  readonly tracing: Tracing | undefined;
  settled(execution: Execution): void;
}
import { strategyFor } from './strategy.js';

/** The generation-side fields of a request's summary line, the same for every transport. */
export interface ExecutionFields {
  readonly model: string;
  readonly tier: string | undefined;
  readonly policy: string | undefined;
  readonly routeReason: string | undefined;
  readonly stream: boolean;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly ttftMs: number | undefined;
  readonly finishReason: string | undefined;
  readonly aborted: boolean;
  readonly servedBy: readonly string[] | undefined;
  readonly continuedFrom: string | undefined;
  readonly fallbacks: readonly object[] | undefined;
  /** The request's trace id (tracing on, the trace sampled), for log/trace correlation. */
  readonly traceId: string | undefined;
}

/**
 * One generation for one request (docs/architecture.md "A request's path"). Built by
 * GenerationService.generate: it plans the route once, checks the request against the chosen
 * tier, and runs the plan's strategy when `run` is called. It owns what the request holds — its
 * abort, the tiers' admission slots (through the strategy), the caller's and the shutdown
 * signal's listeners — and frees them in one place, `settle`, for every ending: done, error,
 * client gone, deadline, shutdown. Settling also teaches the latency models (the tier that
 * served each part) and counts budget misses, once.
 *
 * A request refused before it runs (unknown model, infeasible route, a tier not ready) is an
 * execution already settled with that error: `run` rejects with it, and the plan it got, if
 * any, is still there for the response headers and the summary line.
 */
export class Execution {
  plan: RoutePlan | undefined;
  /** Why the request's own budgets were not applied (pinned model or tier); for a response header. */
  budgetsNotApplied: string | undefined;
  /** The tier routing chose (else the model's configured tier, once known). */
  tier: string | undefined;
  /** The tier object of the first attempt, once routed (echo scoring, the fingerprint). */
  chosenTier: Tier | undefined;
  request: GenerationRequest | undefined;
  readonly record: ExecutionRecord = newExecutionRecord();
  finishReason: string | undefined;
  /** The error the request ended with, once settled with one. */
  failure: GatewayError | undefined;
  /** The request under its key's limits, once admitted (docs/governance.md). */
  private admission: KeyAdmission | undefined;
  /** The request's root span (tracing on; docs/tracing.md); its children are written as it goes. */
  private readonly trace: TraceSpan | undefined;
  /** The stream phase's span (tracing on): the tier attempts are its children. */
  private streamSpan: TraceSpan | undefined;
  private streamStart = 0;
  private readonly progress: ExecutionSummary = { completionTokens: 0, ttftMs: undefined, aborted: false };
  private readonly cancel = new Cancellation();
  private settled = false;
  private running = false;
  private readonly onAbort = (): void => this.abort(this.input.signal?.reason);
  private readonly onShutdown = (): void => this.abort(this.gateway.shutdownSignal.reason);

  constructor(
    private readonly gateway: Gateway,
    private readonly host: ExecutionHost,
    readonly input: GenerationInput,
  ) {
    this.trace = host.tracing === undefined ? undefined : startRequestSpan(host.tracing, input);
    const shutdown = gateway.shutdownSignal;
    shutdown.addEventListener('abort', this.onShutdown);
    input.signal?.addEventListener('abort', this.onAbort);
    try {
      if (gateway.isClosing)
        throw new GatewayError('unavailable', 'The server is shutting down.', { retryAfter: 5 });
      if (shutdown.aborted) throw shutdown.reason;
      if (input.signal?.aborted === true) throw input.signal.reason;
      this.prepare();
    } catch (err) {
      this.settle(asGatewayError(err));
    }
  }

  /** The tier that produced the tokens being sent: the latest that served, else the routed one. */
  get servingTier(): string | undefined {
    return this.record.servedBy.at(-1) ?? this.tier;
  }

  /** Where the key stands against its per-minute limits (x-ratelimit-* fields), once admitted. */
  get rateLimit(): RateLimitInfo | undefined {
    return this.admission?.rateLimit;
  }

  /** Usage so far (prompt tokens count once per choice). */
  usage(): Usage {
    const r = this.request;
    return {
      promptTokens: r === undefined ? 0 : r.promptTokens.length * r.n,
      completionTokens: progressOf(this.progress).completionTokens,
    };
  }

  /**
   * Runs the plan, handing each choice event to `onEvent` (a handler returns a promise only when
   * it must wait, e.g. for a full socket). Rejects with a GatewayError: the planning failure, the
   * generation's, or the abort's reason once aborted (client gone, shutdown, deadline).
   */
  async run(onEvent: ChoiceEventHandler): Promise<void> {
    const request = this.request;
    if (this.failure !== undefined || request === undefined || this.running)
      throw this.failure ?? cancelled();
    this.running = true;
    // The key's limits: its request, prompt tokens and a first lease of completion tokens, or a
    // refusal (429). A synchronous store (in-process) costs no promise here.
    // A span only where the key has limits: otherwise there is nothing to wait for or refuse.
    const keySpan =
      this.trace === undefined || this.host.limits.limitsOf(this.input.caller.apiKey ?? ANONYMOUS) === null
        ? undefined
        : this.trace.child('tiergate.key_limits');
    try {
      const admitted = this.host.limits.admit(this.input.caller.apiKey, {
        promptTokens: request.promptTokens.length * request.n,
        maxCompletionTokens: request.maxTokens * request.n,
      });
      this.admission = admitted instanceof Promise ? await admitted : admitted;
      keySpan?.end();
    } catch (err) {
      const failure = asGatewayError(this.cancel.aborted ? this.cancel.reason : err);
      keySpan?.fail(failure, failure.kind);
      keySpan?.end();
      this.settle(failure);
      throw failure;
    }
    const meter = this.admission.meter;
    const planned = strategyFor(this.plan!).source({
      runtime: this.gateway.resilience,
      attempts: request.attempts ?? this.gateway.resilience.defaultAttempts(request.tier),
      record: this.record,
      deadline: request.deadline,
      metrics: this.gateway.metrics,
    });
    // Completion tokens are charged to the key as they come (src/limits/token-meter.ts).
    const source = meter === undefined ? planned : new MeteredSource(planned, meter);
    const options = {
      signal: this.cancel.signal,
      summary: this.progress,
      onEvent: (ev: Parameters<ChoiceEventHandler>[0]) => {
        if (ev.kind === 'finish') this.finishReason = ev.reason;
        return onEvent(ev);
      },
      streamed: this.input.stream,
    };
    try {
      if (this.trace === undefined) await execute(source, this.gateway, request, options);
      else {
        // The attempts, decoding and streaming: the remote tier sends this span's context on.
        this.streamStart = performance.now();
        const span = this.trace.child('tiergate.stream', 'internal', undefined, this.streamStart);
        this.streamSpan = span;
        holdTraceContext(this.input.caller.requestId, span.headers());
        await execute(source, this.gateway, request, options);
      }
    } catch (err) {
      const failure = asGatewayError(this.cancel.aborted ? this.cancel.reason : err);
      this.settle(failure);
      throw failure;
    }
    this.settle(undefined);
  }

  /** Log-probabilities of the prompt's tokens on the routed tier (echo with logprobs). */
  async scorePrompt(): Promise<Float64Array> {
    const tier = this.chosenTier;
    const tokens = this.request?.promptTokens ?? [];
    if (this.failure !== undefined || tier === undefined) throw this.failure ?? cancelled();
    try {
      return tokens.length > 1 ? await tier.score(tokens, this.cancel.signal) : new Float64Array(0);
    } catch (err) {
      const failure = asGatewayError(this.cancel.aborted ? this.cancel.reason : err);
      this.settle(failure);
      throw failure;
    }
  }

  /**
   * Stops the execution (client gone, call cancelled, shutdown): a running generation ends with
   * this reason and settles as it unwinds; one not running settles now.
   */
  abort(reason?: unknown): void {
    if (this.settled) return;
    this.cancel.abort(reason === undefined ? cancelled() : reason);
    if (!this.running) this.settle(asGatewayError(this.cancel.reason));
  }

  /** The generation's fields of the summary line: live while it runs, final once settled. */
  fields(): ExecutionFields {
    const progress = progressOf(this.progress);
    const r = this.record;
    return {
      model: this.input.model,
      tier: this.tier,
      policy: this.plan?.policy,
      routeReason: this.plan?.code,
      stream: this.input.stream,
      promptTokens: this.request?.promptTokens.length ?? 0,
      completionTokens: progress.completionTokens,
      ttftMs: progress.ttftMs,
      finishReason: this.finishReason,
      aborted: this.progress.aborted || this.failure?.kind === 'cancelled',
      // Also when one tier served but not the routed one (failover or overflow before the first
      // token): `tier` alone would name a tier that served nothing.
      servedBy:
        r.servedBy.length > 1 || (r.servedBy.length === 1 && r.servedBy[0] !== this.tier)
          ? r.servedBy
          : undefined,
      continuedFrom: r.continuedFrom,
      fallbacks: r.fallbacks.length > 0 ? r.fallbacks : undefined,
      traceId: this.trace?.sampled === true ? this.trace.traceId : undefined,
    };
  }

  /** The request's spans end: the attempts from its record, the stream phase, then the root. */
  private endTrace(failure: GatewayError | undefined): void {
    const now = performance.now();
    const stream = this.streamSpan;
    if (stream !== undefined) {
      releaseTraceContext(this.input.caller.requestId);
      attemptSpans(stream, this.record, this.streamStart, now);
      if (failure !== undefined) stream.fail(failure, failure.kind);
      stream.end(now);
    }
    const served = this.servingTier;
    const info = served === undefined ? undefined : this.gateway.tiers.get(served)?.info();
    const f = this.fields();
    endRequestSpan(
      this.trace!,
      {
        plan: this.plan,
        tier: this.tier,
        budgetsNotApplied: this.budgetsNotApplied,
        record: this.record,
        responseModel: info === undefined ? undefined : `${info.modelId}/${info.variant}`,
        usage: this.request === undefined ? undefined : this.usage(),
        ttftMs: f.ttftMs,
        finishReason: f.finishReason,
        limitedBy: this.admission?.meter?.exhausted,
      },
      failure,
    );
  }

  /** Frees what the request held of its key's limits and counts its usage (docs/governance.md "Usage"). */
  private endAdmission(): void {
    const a = this.admission;
    if (a === undefined) return;
    const u = this.usage();
    a.end(u.completionTokens);
    const spend = spendOf(
      this.gateway.config,
      this.plan?.policy,
      u.promptTokens,
      this.record.parts,
      this.tier,
    );
    this.host.limits.usage.used(a.key, a.label, u.promptTokens, u.completionTokens, spend);
  }

  /** Plans, counts the decision, refuses what cannot run, and builds the request for the chosen tier. */
  private prepare(): void {
    const { gateway, input } = this;
    const model = gateway.getModel(input.model);
    this.tier = model?.tier.name;
    const routeSpan = this.trace?.child('tiergate.route');
    const planned = planRequest(gateway, input);
    const plan = planned.plan;
    this.plan = plan;
    if (routeSpan !== undefined) endRouteSpan(routeSpan, plan, planned.promptTokens.length);
    this.budgetsNotApplied = planned.budgetsNotApplied;
    this.host.routeMetrics.decided(plan);
    const first = plan.attempts[0];
    if (plan.rejected !== undefined || first === undefined) {
      const reason = plan.rejected?.reason ?? 'no tier to route to';
      if (plan.code === 'unavailable')
        throw new GatewayError('unavailable', `Cannot route the request: ${reason}.`, { retryAfter: 5 });
      throw new GatewayError('infeasible', `Cannot meet the request's budgets: ${reason}.`, {
        param: 'tiergate',
      });
    }
    const tier = gateway.tiers.get(first.tier);
    if (tier === undefined)
      throw new GatewayError('internal', `Routing chose an unknown tier "${first.tier}".`);
    this.tier = tier.name;
    this.chosenTier = tier;
    // The engine already skipped unready tiers; a static or pinned plan has not looked.
    const health = tier.health();
    if (!health.ready) {
      throw new GatewayError('unavailable', `The model's tier is not ready: ${health.detail ?? 'unknown'}.`, {
        retryAfter: 5,
      });
    }
    this.request = buildGenerationRequest(
      gateway.config,
      gateway.tokenizer,
      tier,
      input,
      planned.promptTokens,
      plan,
    );
  }

  /** The one place an execution ends: listeners off, latency models taught, budget misses counted. */
  private settle(failure: GatewayError | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.failure = failure;
    this.running = false;
    this.gateway.shutdownSignal.removeEventListener('abort', this.onShutdown);
    this.input.signal?.removeEventListener('abort', this.onAbort);
    this.host.settled(this);
    this.endAdmission();
    if (this.trace !== undefined) this.endTrace(failure);
    if (this.request === undefined || this.plan === undefined) return;
    const router = this.gateway.router;
    // Only completed requests teach the latency models: an abandoned one says little of a tier.
    if (failure === undefined) {
      for (const credit of latencyCredits(this.record.parts, this.request.arrivedAt))
        router.observe(credit.tier, credit.observation);
    }
    const served = this.record.servedBy;
    this.host.routeMetrics.ended(
      this.plan,
      served.length > 0 ? served : [this.tier!],
      performance.now() - this.input.caller.arrivedAt,
      // A speculative pair's output is its verify tier's (docs/speculative.md).
      (t) => router.profiles.profile(outputTier(t)).accuracy,
    );
  }
}

function cancelled(): GatewayError {
  return new GatewayError('cancelled', 'The client went away before the request completed.');
}
