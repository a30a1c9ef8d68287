import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { startGrpcServer, type RunningGrpcServer } from './api/grpc/grpc-server.js';
import type { Config } from './config/index.js';
import { Gateway } from './gateway/gateway.js';
import { MetricsService } from './observability/metrics.js';
import { GenerationService } from './service/generation-service.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly gateway: Gateway;
  /** The generation service both APIs call (src/service/). */
  readonly service: GenerationService;
  /** The address actually bound (port 0 in config picks a free port). */
  readonly url: string;
  /** host:port of the gRPC API when `grpc.enabled` (docs/grpc-and-workers.md). */
  readonly grpcAddress: string | undefined;
  /** Graceful stop: refuse new work, let in-flight requests finish within the grace period, close tiers. */
  shutdown(): Promise<void>;
}

/** Loads tiers, builds the app and listens. Used by `tiergate serve`, the tests and the bench. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metrics = new MetricsService();
  const gateway = await Gateway.start(config, logger, metrics);
  const service = new GenerationService(gateway);
  let app: FastifyInstance;
  try {
    // Throws for a route missing from the access table (src/api/scopes.ts): the tiers are closed.
    app = buildApp(service);
  } catch (err) {
    await gateway.close();
    throw err;
  }
  let grpc: RunningGrpcServer | undefined;
  app.addHook('onClose', async () => {
    // gRPC calls drain (aborted past the grace period) before the tiers under them close.
    await grpc?.close();
    await gateway.close();
  });
  let url: string;
  try {
    url = await app.listen({ host: config.server.host, port: config.server.port });
    if (config.grpc.enabled) grpc = await startGrpcServer(service, config.grpc, logger);
  } catch (err) {
    await app.close();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      gateway.beginShutdown();
      logger.info({ graceMs: config.server.shutdownGraceMs }, 'shutting down: draining in-flight requests');
      // app.close() stops accepting at once and resolves when in-flight requests are done;
      // past the grace period, the remaining generations are aborted so it can finish.
      const timer = setTimeout(() => {
        logger.warn('grace period over: aborting in-flight generations');
        gateway.abortInFlight();
      }, config.server.shutdownGraceMs);
      // server.close() drops idle keep-alive sockets only once, when it starts; sockets whose
      // response finishes later would otherwise linger until the keep-alive timeout (72 s).
      const reaper = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
        clearInterval(reaper);
      }
      logger.info('shut down');
    })();
    return stopping;
  };
  return { app, gateway, service, url, grpcAddress: grpc?.address, shutdown };
}
