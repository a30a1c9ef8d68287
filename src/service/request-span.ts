import type { GatewayError } from '../errors/gateway-error.js';
import type { TraceSpan, Tracing } from '../observability/tracing.js';
import type { ExecutionRecord, ServedPart } from '../resilience/executor.js';
import type { RoutePlan } from '../routing/plan.js';
import type { GenerationInput } from './generation-input.js';

/**
 * The attributes and child spans of a request's trace (docs/tracing.md "Spans and
 * attributes"): the OpenTelemetry GenAI semantic conventions (gen_ai.*) where they define one,
 * tiergate.* for the route and its attempts.
 */

/** The request's root span, `{operation} {model}` as the GenAI conventions name it. */
export function startRequestSpan(tracing: Tracing, input: GenerationInput): TraceSpan {
  const operation = input.prompt.kind === 'messages' ? 'chat' : 'text_completion';
  const span = tracing.startSpan(
    `${operation} ${input.model}`,
    'server',
    input.caller.traceContext,
    {
      'gen_ai.operation.name': operation,
      'gen_ai.request.model': input.model,
      'tiergate.request_id': input.caller.requestId,
      'tiergate.stream': input.stream,
    },
    input.caller.arrivedAt,
  );
  if (input.maxTokens != null) span.set('gen_ai.request.max_tokens', input.maxTokens);
  if (input.temperature != null) span.set('gen_ai.request.temperature', input.temperature);
  if (input.topP != null) span.set('gen_ai.request.top_p', input.topP);
  if (input.seed != null) span.set('gen_ai.request.seed', input.seed);
  if (input.n != null && input.n !== 1) span.set('gen_ai.request.choice.count', input.n);
  if (input.caller.apiKey !== undefined) span.set('tiergate.api_key', input.caller.apiKey);
  return span;
}

/** The routing span: what the policy engine decided, ended now. */
export function endRouteSpan(span: TraceSpan, plan: RoutePlan, promptTokens: number): void {
  span.set('tiergate.route.policy', plan.policy);
  span.set('tiergate.route.reason', plan.code);
  span.set('tiergate.route.tier', plan.attempts[0]?.tier);
  span.set(
    'tiergate.route.attempts',
    plan.attempts.map((a) => a.tier),
  );
  span.set('tiergate.route.prompt_tokens', promptTokens);
  span.end();
}

/** What the root span reads of the finished request. */
export interface RequestOutcome {
  readonly plan: RoutePlan | undefined;
  readonly tier: string | undefined;
  readonly budgetsNotApplied: string | undefined;
  readonly record: ExecutionRecord;
  readonly responseModel: string | undefined;
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number } | undefined;
  readonly ttftMs: number | undefined;
  readonly finishReason: string | undefined;
  readonly limitedBy: string | undefined;
}

/** The root span's outcome: usage, the route as it went, the error if any. Ends it. */
export function endRequestSpan(span: TraceSpan, o: RequestOutcome, failure: GatewayError | undefined): void {
  const plan = o.plan;
  if (plan !== undefined) {
    span.set('tiergate.route.policy', plan.policy);
    span.set('tiergate.route.reason', plan.code);
    span.set('tiergate.route.reason_text', plan.reason);
    span.set('tiergate.route.objective', plan.objective);
    span.set('tiergate.route.latency_budget_ms', plan.budget.latencyMs);
    span.set('tiergate.route.accuracy_floor', plan.budget.accuracyFloor);
    span.set('tiergate.route.best_effort', plan.bestEffort);
  }
  span.set('tiergate.route.tier', o.tier);
  span.set('tiergate.route.budgets_not_applied', o.budgetsNotApplied);
  const r = o.record;
  if (r.servedBy.length > 0) span.set('tiergate.route.served_by', [...r.servedBy]);
  if (r.fallbacks.length > 0) {
    span.set(
      'tiergate.route.fallbacks',
      r.fallbacks.map((f) => `${f.from} -> ${f.to ?? '-'} (${f.cause}, ${f.stage})`),
    );
  }
  span.set('tiergate.route.retries', r.retries);
  span.set('tiergate.route.continued_from', r.continuedFrom);
  span.set('gen_ai.response.model', o.responseModel);
  if (o.usage !== undefined) {
    span.set('gen_ai.usage.input_tokens', o.usage.promptTokens);
    span.set('gen_ai.usage.output_tokens', o.usage.completionTokens);
  }
  if (o.ttftMs !== undefined) span.set('tiergate.ttft_ms', Math.round(o.ttftMs * 100) / 100);
  if (o.finishReason !== undefined) span.set('gen_ai.response.finish_reasons', [o.finishReason]);
  span.set('tiergate.limits.limited_by', o.limitedBy);
  if (failure !== undefined) span.fail(failure, failure.kind);
  span.end();
}

/**
 * The admission wait and the attempt of each tier the request tried, as children of its stream
 * span, from the request's record (src/resilience/execution-record.ts): each part a tier served
 * has its start (admitted), first and last token times and tokens, and each move to the next
 * tier its cause. The spans are written when the request ends, with those measured times, so
 * the resilience executor carries no tracing code. An attempt that failed before its first
 * token has no times of its own: its span is marked `tiergate.attempt.timed: false` and placed
 * where the next attempt began.
 */
export function attemptSpans(
  parent: TraceSpan,
  record: ExecutionRecord,
  runStart: number,
  endAt: number,
): void {
  const parts = record.parts;
  let next = 0;
  let cursor = runStart;
  let index = 0;
  const emit = (
    tier: string,
    part: ServedPart | undefined,
    failed: { cause: string; stage: string } | undefined,
  ): void => {
    const nextStart = parts[next]?.startedAt ?? endAt;
    const start = part?.startedAt ?? nextStart;
    if (part !== undefined && part.startedAt > cursor) {
      parent.child('tiergate.admission', 'internal', { 'tiergate.tier': tier }, cursor).end(part.startedAt);
    }
    const end = failed === undefined ? endAt : part !== undefined ? part.lastTokenAt : start;
    const span = parent.child(
      `tiergate.attempt ${tier}`,
      'client',
      {
        'tiergate.tier': tier,
        'tiergate.attempt.index': index++,
        'tiergate.attempt.timed': part !== undefined,
      },
      start,
    );
    if (part !== undefined) {
      span.set('tiergate.attempt.ttft_ms', Math.round((part.firstTokenAt - part.startedAt) * 100) / 100);
      span.set('tiergate.attempt.tokens', part.tokens);
      span.set('tiergate.attempt.prompt_tokens', part.promptTokens);
      span.set('tiergate.attempt.finished', part.finished);
    } else span.set('tiergate.attempt.tokens', 0);
    if (failed !== undefined) {
      span.set('tiergate.attempt.stage', failed.stage);
      span.fail(`tier "${tier}" failed (${failed.cause}, ${failed.stage})`, failed.cause);
    }
    span.end(end);
    cursor = Math.max(cursor, end);
  };
  for (const f of record.fallbacks) {
    const part = parts[next]?.tier === f.from ? parts[next++] : undefined;
    emit(f.from, part, f);
  }
  while (next < parts.length) {
    const part = parts[next++]!;
    emit(part.tier, part, undefined);
  }
}
