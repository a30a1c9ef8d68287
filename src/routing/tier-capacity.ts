import type { TierConfig } from '../config/index.js';

/** Requests a tier runs at once, from its config; the engine's queue-wait model divides by it. */
export function tierCapacity(config: TierConfig | undefined): number {
  switch (config?.kind) {
    case 'llamacpp':
      return config.sequences;
    case 'onnx':
      return config.workers * config.maxBatchSize;
    case 'remote':
      return config.maxConcurrent;
    default:
      // The echo tier does no work; treat it as never saturated.
      return 1_000_000;
  }
}
