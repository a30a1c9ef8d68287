import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { GenerationService } from '../service/generation-service.js';
import { withLazyRequestLoggers } from '../observability/lazy-child-logger.js';
import { adminUsageRoutes } from './admin-usage.js';
import { installAuth } from './auth.js';
import { frameworkError, installErrorHandling } from './error-handler.js';
import { healthRoutes } from './health.js';
import { chatCompletionsRoute } from './openai/chat-completions.js';
import { completionsRoute } from './openai/completions.js';
import { modelsRoutes } from './openai/models.js';
import { installRequestSummary } from './request-context.js';
import { newRequestId } from './request-id.js';
import { withoutDotSegments } from './request-target.js';
import { routeExplainRoutes } from './route-explain.js';

/** A request id from the client is honoured if it looks sane (it ends up in every log line). */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Builds the HTTP app around the generation service of a started gateway without listening (tests use inject() or
 * listen on port 0). Hook order matters: the request summary is installed first so that even
 * requests refused by auth get their log line and metrics.
 */
export function buildApp(service: GenerationService): FastifyInstance {
  const { gateway } = service;
  const { server } = gateway.config;
  const app: FastifyInstance = Fastify({
    // request.log is made a pino child only if something logs through it (lazy-child-logger.ts).
    loggerInstance: withLazyRequestLoggers(gateway.logger),
    // Fastify's own per-request lines are replaced by one summary line (request-context.ts).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit: server.bodyLimitBytes,
    trustProxy: server.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : newRequestId();
    },
    // Keep-alive sockets are closed on shutdown; in-flight requests are let finish (server.ts).
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Connection hygiene (server.* in src/config/schema.ts): a client that sends its headers or
    // body too slowly is answered 408 and disconnected instead of holding a socket.
    keepAliveTimeout: server.keepAliveTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    http: {
      headersTimeout: server.headersTimeoutMs,
      requestTimeout: server.requestTimeoutMs,
      connectionsCheckingInterval: server.connectionsCheckingIntervalMs,
    },
    // Equivalent spellings of a path reach the same route (auth reads the route, src/api/auth.ts).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    rewriteUrl: (req) => withoutDotSegments(req.url ?? '/'),
    frameworkErrors: frameworkError,
  });
  // The API speaks JSON only; other bodies get 415 instead of reaching a handler as a string.
  app.removeContentTypeParser('text/plain');
  installRequestSummary(app, gateway.metrics, gateway.logger);
  installErrorHandling(app);
  // Before any route: it gives each route its access (src/api/scopes.ts) as it is registered.
  installAuth(app, gateway.config);
  healthRoutes(app, gateway);
  modelsRoutes(app, gateway);
  completionsRoute(app, service);
  chatCompletionsRoute(app, service);
  routeExplainRoutes(app, service);
  adminUsageRoutes(app, service);
  // The limits store's connection (Redis) closes with the app.
  app.addHook('onClose', () => service.close());
  return app;
}
