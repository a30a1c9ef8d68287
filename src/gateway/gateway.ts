import type { Logger } from 'pino';
import { GatewayError } from '../errors/gateway-error.js';
import type { Config } from '../config/index.js';
import { loadModelFamily, type ModelFamily } from '../family/manifest.js';
import type { MetricsService } from '../observability/metrics.js';
import { Router } from '../routing/router.js';
import { createTier } from '../tiers/registry.js';
import type { Tier } from '../tiers/tier.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { loadTokenizer } from './load-tokenizer.js';
import { ResilienceRuntime } from '../resilience/resilience-runtime.js';
import { Cancellation, type CancelSignal } from '../tiers/cancellation.js';

/**
 * Config sections (or fields, dotted) whose changes need a restart: they shape objects built once
 * at start (the tracer provider, the limits store's client).
 */
const RESTART_PATHS = [
  'server',
  'grpc',
  'auth',
  'family',
  'tokenizer',
  'tiers',
  'models',
  'tracing',
  'limits.store',
  'limits.redis',
] as const;

function valueAt(config: Config, path: string): unknown {
  let node: unknown = config;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

export interface ServedModel {
  readonly name: string;
  readonly tier: Tier;
  readonly description: string | undefined;
}

/**
 * The gateway's shared state: tokenizer, tiers and the model-name table, built once from a
 * validated config. Fastify decorates the app with it; handlers never read config directly.
 */
export class Gateway {
  private closing = false;
  private routerInstance: Router | undefined;
  /** Aborted when the shutdown grace period ends: every in-flight generation stops. */
  private readonly shutdownController = new Cancellation();

  /** Breakers, admission, retry budget and faults of every tier (src/resilience/). */
  readonly resilience: ResilienceRuntime;

  private constructor(
    private current: Config,
    readonly logger: Logger,
    readonly metrics: MetricsService,
    readonly family: ModelFamily,
    readonly tokenizer: Tokenizer,
    readonly tiers: ReadonlyMap<string, Tier>,
    private readonly models: ReadonlyMap<string, ServedModel>,
    /** Seconds since the epoch at start, for /v1/models `created`. */
    readonly createdAt: number,
  ) {
    this.resilience = new ResilienceRuntime(
      tiers,
      current,
      metrics,
      logger.child({ component: 'resilience' }),
    );
  }

  /** The config in force; a hot reload replaces it atomically (read it per request, never keep it). */
  get config(): Config {
    return this.current;
  }

  /**
   * Hot reload: swaps in a validated config. Live parts (resilience, policies, limits, chat) take
   * effect for the next request; returns the sections that changed but only apply on restart
   * (tiers, models, tokenizer, family, server, grpc, auth, tracing, limits.store and .redis).
   */
  applyConfig(next: Config): string[] {
    const restart = RESTART_PATHS.filter(
      (p) => JSON.stringify(valueAt(next, p)) !== JSON.stringify(valueAt(this.current, p)),
    );
    this.resilience.apply(next);
    this.current = next;
    return restart;
  }

  /** Loads the tokenizer, builds every tier and starts them (models load here). */
  static async start(config: Config, logger: Logger, metrics: MetricsService): Promise<Gateway> {
    const family = loadModelFamily(config.family.dir);
    const tokenizer = await loadTokenizer(config, family);
    const tiers = new Map<string, Tier>();
    try {
      for (const [name, options] of Object.entries(config.tiers)) {
        const tierLogger = logger.child({ tier: name });
        tiers.set(name, createTier(name, options, { logger: tierLogger, metrics, family, tokenizer }));
      }
      await Promise.all(
        [...tiers.values()].map(async (tier) => {
          const t0 = performance.now();
          await tier.start();
          metrics.tierStartSeconds.set({ tier: tier.name }, (performance.now() - t0) / 1000);
        }),
      );
    } catch (err) {
      await Promise.allSettled([...tiers.values()].map((t) => t.close()));
      await tokenizer.close();
      throw err;
    }
    const models = new Map<string, ServedModel>();
    for (const [name, served] of Object.entries(config.models)) {
      models.set(name, { name, tier: tiers.get(served.tier)!, description: served.description });
    }
    const gateway = new Gateway(
      config,
      logger,
      metrics,
      family,
      tokenizer,
      tiers,
      models,
      Math.floor(Date.now() / 1000),
    );
    metrics.tierReadyProbe = () => void gateway.readiness();
    return gateway;
  }

  /** The policy router (src/routing/): profiles, in-flight counts and plans for requests. */
  get router(): Router {
    if (this.routerInstance === undefined) {
      this.routerInstance = new Router(() => this.config, this.family, this.tiers);
      // The engine plans around tiers whose breaker is open (src/resilience/).
      this.routerInstance.useBreakers((tier) => this.resilience.isBreakerOpen(tier));
      // Admission counts what runs and waits on each tier: the load the engine plans with.
      this.routerInstance.useLoad((tier) => this.resilience.load(tier));
    }
    return this.routerInstance;
  }

  listModels(): readonly ServedModel[] {
    return [...this.models.values()];
  }

  getModel(name: string): ServedModel | undefined {
    return this.models.get(name);
  }

  /** Ready when not shutting down and every tier reports ready. */
  readiness(): { ready: boolean; tiers: Record<string, { ready: boolean; detail?: string | undefined }> } {
    const tiers: Record<string, { ready: boolean; detail?: string | undefined }> = {};
    let ready = !this.closing;
    for (const [name, tier] of this.tiers) {
      const h = tier.health();
      tiers[name] = h;
      this.metrics.tierReady.set({ tier: name }, h.ready ? 1 : 0);
      ready &&= h.ready;
    }
    return { ready, tiers };
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Signal that fires when in-flight work must stop (end of the shutdown grace period). */
  get shutdownSignal(): CancelSignal {
    return this.shutdownController.signal;
  }

  /** Stop taking new generations (readyz turns 503); in-flight ones continue. */
  beginShutdown(): void {
    this.closing = true;
  }

  /** Abort whatever is still generating (grace period over). */
  abortInFlight(): void {
    this.shutdownController.abort(new GatewayError('unavailable', 'The server is shutting down.'));
  }

  async close(): Promise<void> {
    this.closing = true;
    this.resilience.close();
    await Promise.allSettled([...this.tiers.values()].map((t) => t.close()));
    await this.tokenizer.close();
  }
}
