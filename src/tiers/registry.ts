import type { Logger } from 'pino';
import type { TierConfigOf, TierKind } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import type { MetricsService } from '../observability/metrics.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { Tier } from './tier.js';
import { EchoTier } from './echo/echo-tier.js';
import { LlamaCppTier } from './llamacpp/llamacpp-tier.js';
import { createOnnxTier } from './onnx/create-onnx-tier.js';
import { createRemoteTier } from './remote/create-remote-tier.js';

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

export type TierFactory<K extends TierKind> = (
  name: string,
  options: TierConfigOf<K>,
  deps: TierDeps,
) => Tier;

/** kind → factory. Each kind registers itself with one line here. */
const factories: { readonly [K in TierKind]: TierFactory<K> } = {
  echo: (name, options, deps) => new EchoTier(name, options, deps),
  llamacpp: (name, options, deps) => new LlamaCppTier(name, options, deps),
  onnx: (name, options, deps) => createOnnxTier(name, options, deps),
  remote: (name, options, deps) => createRemoteTier(name, options, deps),
};

export function createTier<K extends TierKind>(name: string, options: TierConfigOf<K>, deps: TierDeps): Tier {
  const factory = factories[options.kind as K] as TierFactory<K>;
  return factory(name, options, deps);
}
