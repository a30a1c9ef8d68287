import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serverDefinitions } from '../api/grpc/proto.js';
import { healthService } from '../api/grpc/health-service.js';
import type { Config } from '../config/index.js';
import { loadModelFamily } from '../family/manifest.js';
import { loadTokenizer } from '../gateway/load-tokenizer.js';
import { MetricsService } from '../observability/metrics.js';
import { createTier } from '../tiers/registry.js';
import { TIER_HEALTH_SERVICE } from '../tiers/remote/health-probe.js';
import type { Tier } from '../tiers/tier.js';
import { tierService } from './tier-service.js';

export interface WorkerOptions {
  /** The tier (a key of config.tiers) to serve. */
  readonly tier: string;
  readonly host: string;
  /** 0 picks a free port (reported in `address`). */
  readonly port: number;
  /** How long in-flight generations may finish on shutdown before they are cancelled. */
  readonly shutdownGraceMs: number;
}

export interface RunningWorker {
  readonly tier: Tier;
  /** host:port actually bound. */
  readonly address: string;
  /** Not serving (health turns NOT_SERVING), drains in-flight calls, closes the tier. */
  shutdown(): Promise<void>;
}

/**
 * `tiergate worker`: one local tier (llama.cpp edge, ONNX main, …) served over
 * proto/tiergate/v1/tier.proto with grpc.health.v1 next to it — the contract of the PyTorch
 * sidecar — so each tier can run as its own process or Kubernetes Deployment and the gateway
 * reaches it with a `remote` tier.
 */
export async function startWorker(
  config: Config,
  options: WorkerOptions,
  logger: Logger,
): Promise<RunningWorker> {
  const tierConfig = config.tiers[options.tier];
  if (tierConfig === undefined) {
    throw new Error(
      `no tier "${options.tier}" in the config (tiers: ${Object.keys(config.tiers).join(', ') || 'none'})`,
    );
  }
  if (tierConfig.kind === 'remote') {
    throw new Error(
      `tier "${options.tier}" is itself remote; a worker serves a local tier (llamacpp, onnx, echo)`,
    );
  }
  const family = loadModelFamily(config.family.dir);
  const tokenizer = await loadTokenizer(config, family);
  const log = logger.child({ tier: options.tier });
  // The worker's own metrics registry; the gateway exports the request-level series.
  const tier = createTier(options.tier, tierConfig, {
    logger: log,
    metrics: new MetricsService(),
    family,
    tokenizer,
  });
  try {
    await tier.start();
  } catch (err) {
    await Promise.allSettled([tier.close(), tokenizer.close()]);
    throw err;
  }
  let closing = false;
  const defs = serverDefinitions();
  const server = new Server();
  server.addService(
    defs.tier,
    tierService(
      tier,
      {
        // The tier states its own capacity (an unbounded one, the echo tier's, as a million).
        maxConcurrent: Math.min(tier.info().capacity ?? 1_000_000, 2 ** 31 - 1),
        runtime: { node: process.versions.node, kind: tierConfig.kind, pid: String(process.pid) },
      },
      log,
    ),
  );
  // "" is the whole server, TIER_HEALTH_SERVICE the tier: both follow the tier's own readiness.
  server.addService(
    defs.health,
    healthService((service) =>
      service === '' || service === TIER_HEALTH_SERVICE ? !closing && tier.health().ready : undefined,
    ),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err === null ? resolve(bound) : reject(err),
    );
  });
  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  log.info({ address, info: tier.info() }, 'tier worker serving');
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      closing = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn('grace period over: cancelling in-flight calls');
          server.forceShutdown();
          resolve();
        }, options.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await Promise.allSettled([tier.close(), tokenizer.close()]);
      log.info('tier worker stopped');
    })();
    return stopping;
  };
  return { tier, address, shutdown };
}
