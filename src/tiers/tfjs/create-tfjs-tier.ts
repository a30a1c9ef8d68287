/**
 * Builds a TfjsTier from its config and the gateway's shared services: resolves the GGUF in the
 * model family (at start, so a missing file is a start-up error of this tier only), reads the
 * context length from the file's header unless configured, and reports batch sizes in the same
 * histogram as the ONNX tier (labelled by tier).
 */
import type { Histogram } from 'prom-client';
import type { TfjsTierConfig } from '../../config/index.js';
import { resolveVariant } from '../../family/manifest.js';
import type { MetricsService } from '../../observability/metrics.js';
import type { TierDeps } from '../tier-deps.js';
import { GgufTensors } from './gguf-tensors.js';
import { readShape } from './llama-weights.js';
import { TfjsTierError } from './tfjs-tier-error.js';
import { TfjsTier, type TfjsModelSource } from './tfjs-tier.js';

const BATCH_METRIC = 'tiergate_tier_batch_size';
/** What info() calls the variant when the file is not the manifest's TensorFlow variant. */
const FALLBACK_VARIANT = 'tensorflow-fp32';

function batchHistogram(metrics: MetricsService): Histogram<'tier'> {
  const existing = metrics.registry.getSingleMetric(BATCH_METRIC) as Histogram<'tier'> | undefined;
  return (
    existing ??
    metrics.histogram({
      name: BATCH_METRIC,
      help: 'Sequences decoded together in one ONNX Runtime run() (dynamic batching).',
      labelNames: ['tier'],
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
    })
  );
}

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
  const histogram = batchHistogram(deps.metrics);
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
    { logger: deps.logger, onBatch: (tier, size) => histogram.observe({ tier }, size) },
  );
}
