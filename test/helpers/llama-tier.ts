import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildConfig, type LlamaCppTierConfig } from '../../src/config/index.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { LlamaCppTier } from '../../src/tiers/llamacpp/llamacpp-tier.js';
import { FAMILY_DIR } from './start-gateway.js';

export interface StartedLlamaTier {
  readonly tier: LlamaCppTier;
  readonly tokenizer: LlamaTokenizer;
  readonly metrics: MetricsService;
  /** The tier's options after validation and defaults. */
  readonly options: LlamaCppTierConfig;
  close(): Promise<void>;
}

/**
 * The real edge tier on a GGUF of the committed tiny family (F32 unless `options.model` says
 * otherwise), its options validated by the config schema as `tiergate serve` would, started.
 */
export async function startLlamaTier(
  options: Record<string, unknown> = {},
  name = 'edge',
): Promise<StartedLlamaTier> {
  const tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-f32.gguf'));
  const family = loadModelFamily(FAMILY_DIR);
  const config = buildConfig(
    {
      tiers: { [name]: { kind: 'llamacpp', model: 'tiny-f32.gguf', sequences: 2, ...options } },
      models: { m: { tier: name } },
    },
    { env: {} },
  );
  const edge = config.tiers[name];
  assert.ok(edge?.kind === 'llamacpp');
  const metrics = new MetricsService({ defaultMetrics: false });
  const tier = new LlamaCppTier(name, edge, {
    logger: pino({ level: 'silent' }),
    metrics,
    family,
    tokenizer,
  });
  await tier.start();
  return {
    tier,
    tokenizer,
    metrics,
    options: edge,
    close: async () => {
      await tier.close();
      await tokenizer.close();
    },
  };
}
