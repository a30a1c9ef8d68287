import { status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';

/** A request the worker refuses before running it (maps to INVALID_ARGUMENT). */
export class BadTierRequest extends Error {
  override readonly name = 'BadTierRequest';
}

/** The worker's own deadline timer fired (maps to DEADLINE_EXCEEDED). */
export class WorkerDeadlineError extends Error {
  override readonly name = 'WorkerDeadlineError';
}

/**
 * A local tier's error → the gRPC status the gateway's RemoteTier understands
 * (src/tiers/remote/remote-tier-error.ts): UNAVAILABLE is retried on another address or tier.
 */
export function tierErrorStatus(err: unknown): Partial<StatusObject> {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof BadTierRequest) return { code: GrpcStatus.INVALID_ARGUMENT, details: message };
  if (err instanceof WorkerDeadlineError) return { code: GrpcStatus.DEADLINE_EXCEEDED, details: message };
  const code = (err as { code?: unknown }).code;
  if (code === 'TIERGATE_ERR_TIER_UNAVAILABLE') return { code: GrpcStatus.UNAVAILABLE, details: message };
  if (code === 'TIERGATE_ERR_TIER_OVERLOADED')
    return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: message };
  return { code: GrpcStatus.INTERNAL, details: message };
}
