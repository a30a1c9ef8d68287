import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { GenerationService } from '../../service/generation-service.js';
import { gatewayService } from './gateway-service.js';
import { guardService } from './guard.js';
import { healthService } from './health-service.js';
import { serverDefinitions } from './proto.js';

/** The health service name of the gateway API (grpc.health.v1 Check `service`). */
export const GATEWAY_HEALTH_SERVICE = 'tiergate.v1.Gateway';

export interface RunningGrpcServer {
  /** host:port actually bound (port 0 in config picks a free one). */
  readonly address: string;
  /** Stops accepting calls, lets in-flight ones finish (the gateway aborts them past its grace period). */
  close(): Promise<void>;
}

/**
 * The gateway's gRPC API next to HTTP, over the same Gateway object: tiergate.v1.Gateway and
 * grpc.health.v1 ("" = the process is up and not shutting down, like /healthz;
 * "tiergate.v1.Gateway" = every tier ready, like /readyz).
 */
export async function startGrpcServer(
  service: GenerationService,
  listen: { readonly host: string; readonly port: number },
  logger: Logger,
): Promise<RunningGrpcServer> {
  const { gateway } = service;
  const defs = serverDefinitions();
  const server = new Server();
  const log = logger.child({ component: 'grpc' });
  // Every service goes through the access table (src/api/scopes.ts), checked per method.
  server.addService(defs.gateway, guardService(defs.gateway, gatewayService(service, log), gateway, log));
  const health = healthService((service) => {
    if (service === '') return !gateway.isClosing;
    if (service === GATEWAY_HEALTH_SERVICE) return gateway.readiness().ready;
    return undefined;
  });
  server.addService(defs.health, guardService(defs.health, health, gateway, log));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${listen.host}:${listen.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err === null ? resolve(bound) : reject(err),
    );
  });
  const address = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`;
  log.info({ address }, 'gRPC API listening');
  let closing: Promise<void> | undefined;
  return {
    address,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      })),
  };
}
