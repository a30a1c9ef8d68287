import type { Logger } from 'pino';
import type { ModelFamily } from '../family/manifest.js';
import type { MetricsService } from '../observability/metrics.js';
import type { Tokenizer } from '../text/tokenizer.js';

/** What every tier factory receives besides its own options. */
export interface TierDeps {
  /** A pino child logger already bound to `{ tier: name }`. */
  readonly logger: Logger;
  /** The app's metrics; tiers may register their own series (names get the tiergate_ prefix). */
  readonly metrics: MetricsService;
  /** The model family: manifest, variants and their absolute file paths. */
  readonly family: ModelFamily;
  /** The gateway's shared tokenizer (already loaded). */
  readonly tokenizer: Tokenizer;
}
