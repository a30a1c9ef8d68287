import type { ChannelOptions } from '@grpc/grpc-js';
import { createHealthClient, unary, type HealthClient, type ServingStatusName } from './proto-clients.js';

/** The service name the sidecar registers for the tier in grpc.health.v1. */
export const TIER_HEALTH_SERVICE = 'tiergate.v1.Tier';

export type ProbeResult =
  { readonly status: ServingStatusName } | { readonly status: 'ERROR'; readonly error: string };

/**
 * grpc.health.v1 Check against one address. Keeps its own channel so health keeps being
 * answered even when the tier channel is saturated with streams.
 */
export class HealthProbe {
  private readonly client: HealthClient;

  constructor(
    readonly address: string,
    options: ChannelOptions,
  ) {
    this.client = createHealthClient(address, options);
  }

  async check(timeoutMs: number): Promise<ProbeResult> {
    try {
      const res = await unary(
        this.client.Check,
        this.client,
        { service: TIER_HEALTH_SERVICE },
        { deadline: new Date(Date.now() + timeoutMs) },
      );
      return { status: res.status };
    } catch (err) {
      return { status: 'ERROR', error: (err as Error).message };
    }
  }

  /** Polls until SERVING; resolves false when `timeoutMs` passes or `cancelled()` turns true. */
  async waitServing(timeoutMs: number, intervalMs: number, cancelled: () => boolean): Promise<ProbeResult> {
    const until = Date.now() + timeoutMs;
    let last: ProbeResult = { status: 'UNKNOWN' };
    while (!cancelled()) {
      const left = until - Date.now();
      if (left <= 0) break;
      last = await this.check(Math.min(left, 1_000));
      if (last.status === 'SERVING') return last;
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, until - Date.now()))));
    }
    return last;
  }

  close(): void {
    this.client.close();
  }
}
