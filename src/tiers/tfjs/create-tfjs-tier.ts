/**
 * Builds a TfjsTier from its config and the gateway's shared services: resolves the GGUF in the
 * model family (at start, so a missing file is a start-up error of this tier only), reads the
 * context length from the file's header unless configured, and reports batch sizes and worker
 * failures in the same series as the ONNX tier (src/tiers/worker-host/pool-metrics.ts).
 */
import type { TfjsTierConfig } from '../../config/index.js';
import { resolveVariant } from '../../family/manifest.js';
import type { TierDeps } from '../tier-deps.js';
import { poolMetrics } from '../worker-host/pool-metrics.js';
import { GgufTensors } from './gguf-tensors.js';
import { readShape } from './llama-weights.js';
import { TfjsTierError } from './tfjs-tier-error.js';
import { TfjsTier, type TfjsModelSource } from './tfjs-tier.js';

/** What info() calls the variant when the file is not the manifest's TensorFlow variant. */
const FALLBACK_VARIANT = 'tensorflow-fp32';

export function createTfjsTier(name: string, config: TfjsTierConfig, deps: TierDeps): TfjsTier {
  const model = (): TfjsModelSource => {
    const variant = resolveVariant(deps.family, config.model, '.gguf');
    let contextLength = config.contextLength;
    if (contextLength === 0) {
      let file: GgufTensors | undefined;
      try {
        file = new GgufTensors(variant.file);
        contextLength = readShape(file).contextLength;
      } catch (err) {
        throw new TfjsTierError('TG_TFJS_MODEL_INVALID', `tier ${name}: ${(err as Error).message}`);
      } finally {
        file?.close();
      }
    }
    return {
      path: variant.file,
      modelId: deps.family.id,
      variant: variant.framework === 'tensorflow' ? variant.id : FALLBACK_VARIANT,
      contextLength,
    };
  };
  return new TfjsTier(
    {
      name,
      model,
      workers: config.workers,
      threads: config.threads,
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayMs: config.maxQueueDelayMs,
      maxQueue: config.maxQueue,
      batchSpeedup: config.batchSpeedup,
      liveness: config.liveness,
    },
    { logger: deps.logger, observer: poolMetrics(deps.metrics) },
  );
}
