import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, toApiError } from './errors.js';
import { setRateLimitHeaders, setResilienceHeaders } from './route-headers.js';

/**
 * The one place errors become responses: route errors, fastify's own (bad JSON, body too large,
 * wrong content type) and unknown routes all leave as OpenAI error JSON. A 5xx is logged once,
 * here, with its cause; 4xx are the client's business and only counted.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500 && apiError.kind === 'internal') request.log.error({ err }, 'request failed');
    request.tiergate.errorCode = apiError.code ?? apiError.type;
    if (apiError.retryAfter !== undefined) void reply.header('retry-after', String(apiError.retryAfter));
    // A refusal after attempts (every tier shed it, a retry the budget refused) says which tiers
    // it went through and why, as a whole answer does.
    const record = request.tiergate.execution?.record;
    if (record !== undefined) setResilienceHeaders(reply, record);
    setRateLimitHeaders(reply, request.tiergate.execution, apiError.rateLimit);
    return reply.status(apiError.status).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new ApiError('route_not_found', `Unknown request URL: ${request.method} ${request.url}.`);
    request.tiergate.errorCode = err.code ?? err.type;
    return reply.status(err.status).send(err.toBody());
  });
}

/**
 * Fastify's `frameworkErrors`: a request target the router cannot decode (`/v1/%zz`) or a path
 * parameter over its length limit is refused before routing, so before auth and before any
 * hook. The answer is the same 400 for every caller, in the one error shape, and does not echo
 * the target.
 */
export function frameworkError(err: FastifyError, _request: unknown, reply: FastifyReply): void {
  const apiError =
    err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError('bad_request', 'The request URL is not valid.')
      : toApiError(err);
  void reply.status(apiError.status).send(apiError.toBody());
}
