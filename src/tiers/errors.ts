/** The tier is not (yet) able to serve: still loading, closed, or failed to start. → 503 */
export class TierUnavailableError extends Error {
  readonly code = 'TIERGATE_ERR_TIER_UNAVAILABLE';
  constructor(
    readonly tier: string,
    message: string,
  ) {
    super(message);
    this.name = 'TierUnavailableError';
  }
}

/** The tier's queue is full; the client should retry later. → 429 with Retry-After */
export class TierOverloadedError extends Error {
  readonly code = 'TIERGATE_ERR_TIER_OVERLOADED';
  constructor(
    readonly tier: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(`tier "${tier}" is at capacity; retry later`);
    this.name = 'TierOverloadedError';
  }
}
