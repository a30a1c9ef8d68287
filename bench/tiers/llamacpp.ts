/**
 * bench:tiers runner for the `llamacpp` (edge) tier: the family's F32, Q8_0 and Q4_K_M GGUFs, with
 * as many llama.cpp sequences as the run's highest concurrency (batched on each step).
 */
import { existsSync } from 'node:fs';
import { LlamaCppTier } from '../../src/tiers/llamacpp/llamacpp-tier.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import type { BenchContext, BenchTarget, TierRunner } from './runner.js';

const VARIANTS = ['gguf-f32', 'gguf-q8_0', 'gguf-q4_k_m'];

export const runner: TierRunner = {
  kind: 'llamacpp',
  targets(ctx: BenchContext): BenchTarget[] {
    return VARIANTS.filter((id) => ctx.family.variants.some((v) => v.id === id && existsSync(v.file))).map(
      (variant) => ({
        label: `llama.cpp ${variant.replace('gguf-', '')}`,
        variant,
        create: () =>
          new LlamaCppTier(
            `edge-${variant}`,
            {
              kind: 'llamacpp',
              model: variant,
              threads: ctx.threads,
              sequences: ctx.maxConcurrency,
              contextSize: 0,
              batchSize: 512,
              flashAttention: false,
              maxQueue: 64,
              batchSpeedup: 1,
            },
            {
              logger: createLogger('warn'),
              // A registry per tier: each llama.cpp tier registers its own gauges.
              metrics: new MetricsService({ defaultMetrics: false }),
              family: ctx.family,
              tokenizer: ctx.tokenizer,
            },
          ),
      }),
    );
  },
};
