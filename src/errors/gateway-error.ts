/**
 * The one error model below the API (docs/architecture.md "Errors"): every failure a request can
 * meet in the service, routing, resilience or a tier is a GatewayError of one closed set of
 * kinds. Each transport maps a kind to its own answer through one exhaustive table
 * (src/api/errors.ts for HTTP + OpenAI JSON, src/api/grpc/grpc-status.ts for gRPC), so the
 * compiler refuses a kind that a transport does not answer.
 */
import type { RateLimitInfo } from './rate-limit.js';

export const ERROR_KINDS = [
  /** The request is invalid (a field, a token id, an unknown policy or tier). */
  'bad_request',
  /** The named model does not exist. */
  'not_found',
  /** Prompt (+ max tokens) does not fit the tier's context. */
  'context_length',
  /** No tier can meet the request's budgets and its policy rejects such requests. */
  'infeasible',
  /** A tier's queue is full: retry later. */
  'overloaded',
  /** The API key is over one of its limits (requests or tokens per minute, streams at once). */
  'rate_limited',
  /** The API key's hard token budget for its period is spent. */
  'quota_exceeded',
  /** No tier can take the request now (not ready, breaker open, shutting down, shed for time). */
  'unavailable',
  /** The request's own deadline passed before it could finish. */
  'timeout',
  /**
   * A tier did not answer within its attempt's time limit while the request's deadline had time
   * left, and no other tier was left to try: the upstream's timeout, not the client's.
   */
  'upstream_timeout',
  /** The tier failed in a way it could not explain (stream broken, worker died). */
  'upstream_broken',
  /** The client went away or cancelled the call. */
  'cancelled',
  /** A bug or an unexpected failure inside the gateway. */
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Whether another attempt (on another tier) can succeed, unless the error says otherwise. */
const RETRYABLE_BY_DEFAULT: { readonly [K in ErrorKind]: boolean } = {
  bad_request: false,
  not_found: false,
  context_length: false,
  infeasible: false,
  overloaded: true,
  // A key's limits are the same whichever tier would serve.
  rate_limited: false,
  quota_exceeded: false,
  unavailable: true,
  timeout: true,
  upstream_timeout: true,
  upstream_broken: true,
  cancelled: false,
  internal: true,
};

export interface GatewayErrorOptions {
  /** The request field at fault (OpenAI's `param`), e.g. `max_tokens` or `tiergate.policy`. */
  readonly param?: string | null | undefined;
  /** Seconds a client should wait before retrying (429 / 503). */
  readonly retryAfter?: number | undefined;
  /** Overrides the kind's default (e.g. a remote tier's deadline is not worth another attempt). */
  readonly retryable?: boolean | undefined;
  /** A stable detail code for logs and metrics (e.g. `TIERGATE_ERR_SHED_QUEUE_FULL`). */
  readonly code?: string | undefined;
  /** The tier the error happened on, when there is one. */
  readonly tier?: string | undefined;
  /** The key's per-minute limits at a refusal, for the x-ratelimit-* headers and trailers. */
  readonly rateLimit?: RateLimitInfo | undefined;
  readonly cause?: unknown;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly param: string | null;
  readonly retryAfter: number | undefined;
  readonly retryable: boolean;
  readonly code: string;
  readonly tier: string | undefined;
  readonly rateLimit: RateLimitInfo | undefined;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.kind = kind;
    this.param = options.param ?? null;
    this.retryAfter = options.retryAfter;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT[kind];
    this.code = options.code ?? `TIERGATE_ERR_${kind.toUpperCase()}`;
    this.tier = options.tier;
    this.rateLimit = options.rateLimit;
  }
}

/**
 * Any thrown value as a GatewayError: itself, or `internal` for anything else (a bug, a library
 * error a tier did not map). The original is kept as the cause for the log line.
 */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * Whether another attempt (on another tier) can succeed after `err`. A client mistake fails the
 * same way everywhere, so it ends the request at once; an unknown error might be the tier's own.
 */
export function isRetryable(err: unknown): boolean {
  return err instanceof GatewayError ? err.retryable : true;
}
