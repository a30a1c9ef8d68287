/**
 * The contract between `npm run bench:tiers` (bench/tiers.ts) and the per-kind runner modules in
 * this folder: a module that exports `runner: TierRunner` is picked up automatically, so adding a
 * tier kind to the benchmark means adding one file here.
 */
import type { ModelFamily } from '../../src/family/manifest.js';
import type { Tokenizer } from '../../src/text/tokenizer.js';
import { createLogger } from '../../src/observability/logger.js';
import { MetricsService } from '../../src/observability/metrics.js';
import type { Tier } from '../../src/tiers/tier.js';
import type { TierDeps } from '../../src/tiers/tier-deps.js';

export interface BenchContext {
  readonly family: ModelFamily;
  /** The family's tokenizer (vocab-only llama.cpp load of its F32 GGUF). */
  readonly tokenizer: Tokenizer;
  /** The highest concurrency the run measures: size batches / sequence pools for it. */
  readonly maxConcurrency: number;
  /** Threads per tier (llama.cpp threads, ORT intra-op threads, torch threads). */
  readonly threads: number;
}

/** One tier configuration to measure, e.g. ONNX INT8 or llama.cpp Q4_K_M. */
export interface BenchTarget {
  /** Short label for the tables, e.g. "onnx fp32". */
  readonly label: string;
  /** The manifest variant id it serves, e.g. "onnx-fp32". */
  readonly variant: string;
  /** Builds the tier (not started); the harness starts, measures and closes it. */
  create(): Tier;
}

export interface TierRunner {
  /** Tier kind as in config (`onnx`, `llamacpp`, `remote`, …). */
  readonly kind: string;
  /** Targets of this kind present in the family (missing files are skipped with a note). */
  targets(ctx: BenchContext): BenchTarget[];
}

/** What a tier factory gets in a benchmark: a metrics registry of its own (tiers register series by name). */
export function benchTierDeps(ctx: BenchContext): TierDeps {
  return {
    logger: createLogger('warn'),
    metrics: new MetricsService({ defaultMetrics: false }),
    family: ctx.family,
    tokenizer: ctx.tokenizer,
  };
}
