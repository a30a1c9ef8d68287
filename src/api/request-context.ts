import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { MetricsService } from '../observability/metrics.js';
import { roundMs, writeRequestSummary } from '../observability/request-summary.js';
import type { Execution } from '../service/execution.js';
import type { Denial } from './auth.js';

/**
 * What the HTTP layer keeps per request: when it arrived, who it is (auth), the generation it
 * started, and the error code it was answered with. The generation's own state lives in its
 * Execution (src/service/execution.ts), not here.
 */
export interface RequestContext {
  readonly startedAt: number;
  /** The generation this request runs, once a generation route has asked for one. */
  execution: Execution | undefined;
  /** Name of the API key the request presented, when it matched one (auth on). */
  apiKey: string | undefined;
  /** Why auth refused the request (401/403); the summary line says so, without key material. */
  denied: Denial | undefined;
  /** The error code the request was answered with (OpenAI `code`, else `type`). */
  errorCode: string | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    tiergate: RequestContext;
  }
}

/**
 * The request's summary line (through the one writer both transports use) and request metrics.
 * Both hang on the raw response's `close`, the one event Node emits for every ending of an HTTP
 * response — normal replies, hijacked SSE streams and client disconnects (fastify's onResponse
 * misses disconnects, and its onRequestAbort fires only while the body is still being read). A
 * response closed before it finished means the client went away: its execution is aborted, and
 * the execution frees what it holds itself (src/service/execution.ts `settle`).
 */
export function installRequestSummary(app: FastifyInstance, metrics: MetricsService, logger: Logger): void {
  app.decorateRequest('tiergate', null as unknown as RequestContext);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    request.tiergate = {
      startedAt: performance.now(),
      execution: undefined,
      apiKey: undefined,
      denied: undefined,
      errorCode: undefined,
    };
    void reply.header('x-request-id', request.id);
    // 'on', not 'once': a response closes once, and once() wraps and later removes the listener.
    reply.raw.on('close', () => {
      const finished = reply.raw.writableFinished;
      // Before it finished: the client went away. After: a no-op, unless the handler failed
      // between asking for the generation and running it; either way the execution settles.
      request.tiergate.execution?.abort();
      summarise(request, reply.raw.statusCode, finished, metrics, logger);
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
  const exec = ctx.execution?.fields();
  const tier = exec?.tier ?? 'none';
  const code = String(status);
  metrics.requests.labels(route, tier, code).inc();
  metrics.requestDuration.labels(route, tier, code).observe(seconds);
  // Probes and scrapes would drown the log; they are visible in the metrics. A refused scrape is
  // logged all the same.
  if (ctx.denied === undefined && (route === '/healthz' || route === '/readyz' || route === '/metrics'))
    return;
  writeRequestSummary(logger, {
    requestId: request.id,
    transport: 'http',
    method: request.method,
    route,
    status,
    apiKey: ctx.apiKey,
    denied: ctx.denied,
    model: exec?.model,
    tier: exec?.tier,
    policy: exec?.policy,
    routeReason: exec?.routeReason,
    stream: exec?.stream ?? false,
    promptTokens: exec?.promptTokens ?? 0,
    completionTokens: exec?.completionTokens ?? 0,
    ttftMs: exec?.ttftMs === undefined ? undefined : roundMs(exec.ttftMs),
    durationMs: roundMs(seconds * 1000),
    finishReason: exec?.finishReason,
    error: ctx.errorCode,
    aborted: exec?.aborted === true || !finished ? true : undefined,
    servedBy: exec?.servedBy,
    continuedFrom: exec?.continuedFrom,
    fallbacks: exec?.fallbacks,
    traceId: exec?.traceId,
  });
}
