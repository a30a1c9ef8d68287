import { GatewayError } from '../errors/gateway-error.js';

/** The tier is not (yet) able to serve: still loading, closed, or failed to start. → unavailable */
export class TierUnavailableError extends GatewayError {
  constructor(tier: string, message: string) {
    super('unavailable', message, { code: 'TIERGATE_ERR_TIER_UNAVAILABLE', tier, retryAfter: 5 });
    this.name = 'TierUnavailableError';
  }
}

/** The tier's queue is full; the client should retry later. → overloaded (429 with Retry-After) */
export class TierOverloadedError extends GatewayError {
  constructor(tier: string, retryAfterSeconds = 1) {
    super('overloaded', `tier "${tier}" is at capacity; retry later`, {
      code: 'TIERGATE_ERR_TIER_OVERLOADED',
      tier,
      retryAfter: retryAfterSeconds,
    });
    this.name = 'TierOverloadedError';
  }
}

/**
 * A step of an in-process tier passed its liveness limit (src/tiers/llamacpp/step-watch.ts): the
 * stream broke off and another tier can continue it. → upstream_broken (retryable)
 */
export class TierStalledError extends GatewayError {
  constructor(tier: string, reason: string) {
    super('upstream_broken', `tier "${tier}" stalled: ${reason}`, {
      code: 'TIERGATE_ERR_TIER_STALLED',
      tier,
    });
    this.name = 'TierStalledError';
  }
}
