/**
 * bench:tiers runner for the `onnx` (main) tier: the family's FP32, INT8 and INT4 exports, each
 * in one worker thread with continuous batching up to the run's highest concurrency.
 */
import { existsSync } from 'node:fs';
import { createOnnxTier } from '../../src/tiers/onnx/create-onnx-tier.js';
import { benchTierDeps, type BenchContext, type BenchTarget, type TierRunner } from './runner.js';

const VARIANTS = ['onnx-fp32', 'onnx-int8', 'onnx-int4'];

export const runner: TierRunner = {
  kind: 'onnx',
  targets(ctx: BenchContext): BenchTarget[] {
    return VARIANTS.filter((id) => ctx.family.variants.some((v) => v.id === id && existsSync(v.file))).map(
      (variant) => ({
        label: `onnx ${variant.replace('onnx-', '')}`,
        variant,
        create: () =>
          createOnnxTier(
            `main-${variant}`,
            {
              kind: 'onnx',
              model: variant,
              workers: 1,
              intraOpThreads: ctx.threads,
              maxBatchSize: ctx.maxConcurrency,
              maxQueueDelayMs: 2,
              maxQueue: 64,
              contextLength: 0,
            },
            benchTierDeps(ctx),
          ),
      }),
    );
  },
};
