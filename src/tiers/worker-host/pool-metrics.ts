/**
 * What a worker pool reports to the gateway's metrics, shared by every worker-pooled tier kind
 * (labelled by tier): the sequences decoded together per step, and the workers that died or
 * stalled (each one is replaced).
 */
import type { MetricsService } from '../../observability/metrics.js';

export type WorkerFailureCause = 'crash' | 'stall';

export interface PoolObserver {
  observeBatchSize?(tier: string, size: number): void;
  countWorkerFailure?(tier: string, cause: WorkerFailureCause): void;
}

export function poolMetrics(metrics: MetricsService): Required<PoolObserver> {
  const batchSize = metrics.histogram({
    name: 'tiergate_tier_batch_size',
    help: 'Sequences decoded together in one run of a worker-pooled tier (dynamic batching).',
    labelNames: ['tier'],
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
  });
  const failures = metrics.counter({
    name: 'tiergate_tier_worker_failures_total',
    help: 'Inference workers that died (crash) or stopped answering (stall, docs/main-tier.md "Worker liveness"); each is replaced.',
    labelNames: ['tier', 'cause'],
  });
  return {
    observeBatchSize: (tier, size) => batchSize.observe({ tier }, size),
    countWorkerFailure: (tier, cause) => failures.inc({ tier, cause }),
  };
}
