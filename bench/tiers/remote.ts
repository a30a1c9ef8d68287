/**
 * bench:tiers runner for the `remote` tier kind: the PyTorch sidecar serving the family's FP32
 * model, spawned and supervised exactly as the gateway runs it, and measured through gRPC (the
 * issue's target: single stream ≥ 0.5× llama.cpp F32 in the same run).
 */
import { existsSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { RemoteTierSchema, type RemoteTierConfig } from '../../src/config/tiers/remote.js';
import { createLogger } from '../../src/observability/logger.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { RemoteTier } from '../../src/tiers/remote/remote-tier.js';
import type { BenchContext, BenchTarget, TierRunner } from './runner.js';

const VARIANT = 'pytorch-fp32';

export const runner: TierRunner = {
  kind: 'remote',
  targets(ctx: BenchContext): BenchTarget[] {
    if (!ctx.family.variants.some((v) => v.id === VARIANT && existsSync(v.file))) return [];
    const config = Value.Default(RemoteTierSchema, {
      kind: 'remote',
      spawn: true,
      model: VARIANT,
      required: true,
      threads: ctx.threads,
      // One slot per stream of the highest concurrency level, so none waits in the sidecar's queue.
      maxConcurrent: ctx.maxConcurrency,
    }) as RemoteTierConfig;
    return [
      {
        label: 'pytorch fp32 (gRPC sidecar)',
        variant: VARIANT,
        create: () =>
          new RemoteTier('fallback', config, {
            logger: createLogger('warn'),
            metrics: new MetricsService({ defaultMetrics: false }),
            family: ctx.family,
          }),
      },
    ];
  },
};
