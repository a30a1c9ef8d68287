import type { Counter, Gauge } from 'prom-client';
import type { MetricsService } from '../../observability/metrics.js';

export interface SidecarMetrics {
  /** Sidecar restarts after a crash or a failed start, by tier. */
  readonly restarts: Counter<'tier'>;
  /** 1 while the tier's gRPC server is connected and SERVING. */
  readonly up: Gauge<'tier'>;
}

const RESTARTS = 'tiergate_sidecar_restarts_total';
const UP = 'tiergate_remote_tier_up';

/** The remote tier's series, registered once per metrics registry and shared by every remote tier. */
export function sidecarMetrics(metrics: MetricsService): SidecarMetrics {
  const restarts =
    (metrics.registry.getSingleMetric(RESTARTS) as Counter<'tier'> | undefined) ??
    metrics.counter({
      name: RESTARTS,
      help: 'Sidecar restarts after a crash or failed start.',
      labelNames: ['tier'],
    });
  const up =
    (metrics.registry.getSingleMetric(UP) as Gauge<'tier'> | undefined) ??
    metrics.gauge({
      name: UP,
      help: '1 while the remote tier server is connected and SERVING.',
      labelNames: ['tier'],
    });
  return { restarts, up };
}
