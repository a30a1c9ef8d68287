import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { loadModelFamily, type ModelFamily } from '../family/manifest.js';
import { loadTokenizer } from '../gateway/load-tokenizer.js';
import { MetricsService } from '../observability/metrics.js';
import { configuredVariant } from '../tiers/registry.js';
import { createTier } from '../tiers/registry.js';
import type { Tier } from '../tiers/tier.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { Target } from './targets.js';

/**
 * Builds tiers exactly as the gateway does (registry.createTier with the gateway's config, the
 * family and the shared tokenizer), so eval and bench measure what is served.
 */
export class TierHost {
  private constructor(
    readonly config: Config,
    readonly family: ModelFamily,
    readonly tokenizer: Tokenizer,
    private readonly logger: Logger,
  ) {}

  static async open(config: Config, logger: Logger): Promise<TierHost> {
    const family = loadModelFamily(config.family.dir);
    return new TierHost(config, family, await loadTokenizer(config, family), logger);
  }

  /** Creates and starts the target's tier; `loadMs` is start() alone (model load, workers, sidecar). */
  async start(target: Target): Promise<{ tier: Tier; loadMs: number }> {
    const tier = createTier(target.name, target.config, {
      logger: this.logger.child({ tier: target.name }),
      // A private registry per tier: tiers register series by name, twice would throw.
      metrics: new MetricsService({ defaultMetrics: false }),
      family: this.family,
      tokenizer: this.tokenizer,
    });
    const t0 = performance.now();
    try {
      await tier.start();
    } catch (err) {
      await tier.close().catch(() => undefined);
      throw err;
    }
    return { tier, loadMs: performance.now() - t0 };
  }

  /** Manifest variant id the target serves (undefined for echo). */
  variantOf(target: Target): string | undefined {
    return configuredVariant(this.family, target.config);
  }
}
