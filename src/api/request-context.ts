import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { MetricsService } from '../observability/metrics.js';
import { writeSummaryLine } from '../observability/summary-line.js';
import { progressOf, type ExecutionSummary } from '../pipeline/execute.js';
import type { ExecutionRecord } from '../resilience/executor.js';
import type { RoutePlan } from '../routing/plan.js';
import type { Denial } from './auth.js';

/** What a request accumulates on its way through, for its summary log line and metrics. */
export interface RequestContext {
  readonly startedAt: number;
  /** The request's reply, so routing (inside body handling) can set response headers. */
  readonly reply: FastifyReply;
  /** The routing plan, once routing ran (src/api/route-decision.ts). */
  plan?: RoutePlan | undefined;
  tier: string | undefined;
  model: string | undefined;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  /** Milliseconds from arrival to the first generated token. */
  ttftMs: number | undefined;
  finishReason: string | undefined;
  errorCode: string | undefined;
  /** True when the client went away before the response was complete. */
  aborted: boolean;
  /** The generation's counters (src/pipeline/execute.ts), read live by the summary line. */
  execution?: ExecutionSummary | undefined;
  /** Fallbacks, retries and continuation across tiers (src/resilience/executor.ts). */
  resilience?: ExecutionRecord | undefined;
  /**
   * Called once when the response closes (however it ends), before the summary line: routing
   * frees its slot here. One 'close' listener per request runs it, rather than one each.
   */
  onEnd?: (() => void) | undefined;
  /**
   * Called from the same listener when the response closed before it finished (the client went
   * away): the responder aborts its generation here. Cleared by the responder when it is done.
   */
  onClientGone?: (() => void) | undefined;
  /** Name of the API key the request presented, when it matched one (auth on). */
  apiKey?: string | undefined;
  /** Why auth refused the request (401/403); the summary line says so, without key material. */
  denied?: Denial | undefined;
  /** The routing policy applied ("none": the static model table) and its reason code. */
  policy?: string | undefined;
  routeReason?: string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    tiergate: RequestContext;
  }
}

/**
 * One summary line per request (route, tier, status, tokens, TTFT, duration) and the request
 * counters. It hangs on the raw response's `close` event, which fires for normal replies,
 * hijacked SSE streams and client disconnects alike.
 */
export function installRequestSummary(app: FastifyInstance, metrics: MetricsService, logger: Logger): void {
  app.decorateRequest('tiergate', null as unknown as RequestContext);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    request.tiergate = {
      startedAt: performance.now(),
      reply,
      tier: undefined,
      model: undefined,
      stream: false,
      promptTokens: 0,
      completionTokens: 0,
      ttftMs: undefined,
      finishReason: undefined,
      errorCode: undefined,
      aborted: false,
    };
    void reply.header('x-request-id', request.id);
    // 'on', not 'once': a response closes once, and once() wraps and later removes the listener.
    reply.raw.on('close', () => {
      const ctx = request.tiergate;
      if (!reply.raw.writableFinished) ctx.onClientGone?.();
      const onEnd = ctx.onEnd;
      ctx.onEnd = undefined;
      onEnd?.();
      summarise(request, reply.raw.statusCode, reply.raw.writableFinished, metrics, logger);
    });
    done();
  });
}

function summarise(
  request: FastifyRequest,
  status: number,
  finished: boolean,
  metrics: MetricsService,
  logger: Logger,
): void {
  const ctx = request.tiergate;
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  const route = request.routeOptions.url ?? 'unmatched';
  const tier = ctx.tier ?? 'none';
  const code = String(status);
  metrics.requests.labels(route, tier, code).inc();
  metrics.requestDuration.labels(route, tier, code).observe(seconds);
  // Probes and scrapes would drown the log; they are visible in the metrics. A refused scrape is
  // logged all the same.
  if (ctx.denied === undefined && (route === '/healthz' || route === '/readyz' || route === '/metrics'))
    return;
  // A stream whose client left is summarised while its generation stops: the counts come from
  // the execution itself, live, not from what the responder copies once it is done.
  const progress = ctx.execution === undefined ? ctx : progressOf(ctx.execution);
  // The root logger with the request id, rather than request.log: that child is then never built
  // for a request that logs nothing else (src/observability/lazy-child-logger.ts).
  writeSummaryLine(logger, {
    requestId: request.id,
    method: request.method,
    route,
    status,
    apiKey: ctx.apiKey,
    denied: ctx.denied,
    model: ctx.model,
    tier: ctx.tier,
    policy: ctx.policy,
    routeReason: ctx.routeReason,
    stream: ctx.stream,
    promptTokens: ctx.promptTokens,
    completionTokens: progress.completionTokens,
    ttftMs: progress.ttftMs === undefined ? undefined : round(progress.ttftMs),
    durationMs: round(seconds * 1000),
    finishReason: ctx.finishReason,
    error: ctx.errorCode,
    aborted: ctx.aborted || !finished ? true : undefined,
    servedBy:
      ctx.resilience !== undefined && ctx.resilience.servedBy.length > 1
        ? ctx.resilience.servedBy
        : undefined,
    continuedFrom: ctx.resilience?.continuedFrom,
    fallbacks: ctx.resilience?.fallbacks.length ? ctx.resilience.fallbacks : undefined,
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
