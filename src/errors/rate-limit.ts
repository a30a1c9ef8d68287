/**
 * Where a key stands against its per-minute limits (docs/governance.md): what the
 * x-ratelimit-* headers of a response or a refusal, and the gRPC trailers, carry.
 */
export interface LimitState {
  readonly limit: number;
  /** What is left in the current window (never below 0). */
  readonly remaining: number;
  /** Milliseconds until the window resets to the full limit. */
  readonly resetMs: number;
}

export interface RateLimitInfo {
  /** Requests per minute, when the key has that limit. */
  readonly requests?: LimitState | undefined;
  /** Tokens per minute, when the key has that limit. */
  readonly tokens?: LimitState | undefined;
}
