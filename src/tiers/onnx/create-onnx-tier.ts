/**
 * Builds an OnnxTier from its config and the gateway's shared services: resolves the variant in
 * the model family (at start, so a missing file is a start-up error of this tier only), reads the
 * context length from the manifest unless configured, and reports batch sizes and worker failures
 * to the gateway's metrics (src/tiers/worker-host/pool-metrics.ts).
 */
import type { OnnxTierConfig } from '../../config/index.js';
import { resolveVariant, type ModelFamily } from '../../family/manifest.js';
import type { TierDeps } from '../tier-deps.js';
import { poolMetrics } from '../worker-host/pool-metrics.js';
import { OnnxTierError } from './onnx-tier-error.js';
import { OnnxTier, type OnnxModelSource } from './onnx-tier.js';

/** Keys under which a manifest may state the training context (ours, HF config, GGUF-like). */
const CONTEXT_KEYS = ['context_length', 'contextLength', 'max_seq_len', 'max_position_embeddings', 'n_ctx'];

/** The family's context length from its manifest (top level or an architecture/config object). */
export function manifestContextLength(family: ModelFamily): number | undefined {
  const m = family.manifest;
  if (m === undefined) return undefined;
  const scopes: unknown[] = [m, m['config'], m['architecture'], m['model'], m['arch']];
  for (const scope of scopes) {
    if (typeof scope !== 'object' || scope === null) continue;
    for (const key of CONTEXT_KEYS) {
      const v = (scope as Record<string, unknown>)[key];
      if (typeof v === 'number' && v > 0) return v;
    }
  }
  return undefined;
}

export function createOnnxTier(name: string, config: OnnxTierConfig, deps: TierDeps): OnnxTier {
  const model = (): OnnxModelSource => {
    const variant = resolveVariant(deps.family, config.model, '.onnx');
    const contextLength =
      config.contextLength > 0 ? config.contextLength : manifestContextLength(deps.family);
    if (contextLength === undefined) {
      throw new OnnxTierError(
        'TG_ONNX_BAD_REQUEST',
        `tier ${name}: the model family's manifest states no context length; set contextLength in the tier config`,
      );
    }
    return {
      path: variant.file,
      modelId: deps.family.id,
      variant: variant.id,
      precision: variant.precision || 'unknown',
      contextLength,
      vocabSize: deps.tokenizer.vocabSize,
    };
  };
  return new OnnxTier(
    {
      name,
      model,
      workers: config.workers,
      intraOpThreads: config.intraOpThreads,
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayMs: config.maxQueueDelayMs,
      maxQueue: config.maxQueue,
      batchSpeedup: config.batchSpeedup,
      liveness: config.liveness,
    },
    { logger: deps.logger, observer: poolMetrics(deps.metrics) },
  );
}
