/**
 * bench:tiers runner for the `tfjs` tier: the family's FP32 model in TensorFlow.js on its wasm
 * (XNNPACK) backend, one worker thread with continuous batching up to the run's highest
 * concurrency (docs/tf-tier.md).
 */
import { createTfjsTier } from '../../src/tiers/tfjs/create-tfjs-tier.js';
import { benchTierDeps, type BenchContext, type BenchTarget, type TierRunner } from './runner.js';

const VARIANT = 'tensorflow-fp32';

export const runner: TierRunner = {
  kind: 'tfjs',
  targets(ctx: BenchContext): BenchTarget[] {
    if (!ctx.family.variants.some((v) => v.id === VARIANT)) return [];
    return [
      {
        label: 'tfjs fp32',
        variant: VARIANT,
        create: () =>
          createTfjsTier(
            `tf-${VARIANT}`,
            {
              kind: 'tfjs',
              model: VARIANT,
              workers: 1,
              threads: ctx.threads,
              maxBatchSize: ctx.maxConcurrency,
              maxQueueDelayMs: 2,
              maxQueue: 64,
              contextLength: 0,
            },
            benchTierDeps(ctx),
          ),
      },
    ];
  },
};
