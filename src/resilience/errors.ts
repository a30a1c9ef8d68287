import { GatewayError, type ErrorKind } from '../errors/gateway-error.js';

/**
 * The resilience layer's own failures, as GatewayErrors (docs/architecture.md "Errors"): the code
 * says which rule refused (for logs and the fallback metric's `cause`), the kind how a transport
 * answers it.
 */
export type ResilienceErrorCode =
  /** The tier's admission queue is full. → overloaded (429) */
  | 'TIERGATE_ERR_SHED_QUEUE_FULL'
  /** Waiting for a slot would outlast the request's deadline. → unavailable (503) */
  | 'TIERGATE_ERR_SHED_DEADLINE'
  /** The tier's circuit breaker is open. → unavailable (503) */
  | 'TIERGATE_ERR_BREAKER_OPEN'
  /** The request's deadline passed before it could finish. → timeout (504) */
  | 'TIERGATE_ERR_DEADLINE'
  /**
   * One attempt ran past its own time limit while the request's deadline had time left (the
   * request may continue elsewhere). → upstream_timeout (504 upstream_timeout), never the
   * client's deadline_exceeded.
   */
  | 'TIERGATE_ERR_ATTEMPT_TIMEOUT'
  /**
   * A retry was refused by the failed tier's retry budget while another tier of the plan was
   * predicted to fit the deadline: the gateway chose not to use it. → unavailable (503)
   */
  | 'TIERGATE_ERR_RETRY_BUDGET'
  /** Every tier of the plan refused the request at admission (the overflow found no room). */
  | 'TIERGATE_ERR_SHED_EVERYWHERE'
  /** A failure injected by config (`resilience.*.fault`). → unavailable (503) */
  | 'TIERGATE_ERR_FAULT_INJECTED';

const KIND: { readonly [C in ResilienceErrorCode]: ErrorKind } = {
  TIERGATE_ERR_SHED_QUEUE_FULL: 'overloaded',
  TIERGATE_ERR_SHED_DEADLINE: 'unavailable',
  TIERGATE_ERR_BREAKER_OPEN: 'unavailable',
  TIERGATE_ERR_DEADLINE: 'timeout',
  TIERGATE_ERR_ATTEMPT_TIMEOUT: 'upstream_timeout',
  TIERGATE_ERR_RETRY_BUDGET: 'unavailable',
  TIERGATE_ERR_SHED_EVERYWHERE: 'overloaded',
  TIERGATE_ERR_FAULT_INJECTED: 'unavailable',
};

export class ResilienceError extends GatewayError {
  declare readonly code: ResilienceErrorCode;

  constructor(
    code: ResilienceErrorCode,
    message: string,
    tier: string | undefined,
    retryAfterSeconds?: number,
    options: { readonly kind?: ErrorKind; readonly cause?: unknown } = {},
  ) {
    super(options.kind ?? KIND[code], message, {
      code,
      tier,
      retryAfter: retryAfterSeconds,
      cause: options.cause,
    });
    this.name = 'ResilienceError';
  }

  get retryAfterSeconds(): number | undefined {
    return this.retryAfter;
  }
}

/**
 * Every attempt of a request failed: the client sees the last failure's kind (and Retry-After);
 * one the gateway cannot explain is the upstream's (upstream_broken, 502).
 */
export class AllTiersFailedError extends GatewayError {
  declare readonly code: 'TIERGATE_ERR_ALL_TIERS_FAILED';

  constructor(
    readonly tiers: readonly string[],
    readonly last: unknown,
  ) {
    const lastKind = last instanceof GatewayError ? last.kind : 'internal';
    // The client sees the last failure as it was; one the gateway cannot explain names the tiers.
    super(
      lastKind === 'internal' ? 'upstream_broken' : lastKind,
      lastKind === 'internal'
        ? `all tiers failed (${tiers.join(' → ') || 'none tried'}): ${last instanceof Error ? last.message : String(last)}`
        : (last as GatewayError).message,
      {
        code: 'TIERGATE_ERR_ALL_TIERS_FAILED',
        cause: last,
        param: last instanceof GatewayError ? last.param : null,
        retryAfter: last instanceof GatewayError ? last.retryAfter : undefined,
        retryable: false,
      },
    );
    this.name = 'AllTiersFailedError';
  }
}

export { isRetryable } from '../errors/gateway-error.js';

/** Why an attempt did not serve the request; the `cause` label of the fallback metric. */
export type FailureCause =
  'error' | 'timeout' | 'breaker_open' | 'shed' | 'overloaded' | 'unavailable' | 'fault';

/** The fallback metric's cause: the resilience layer's own rules by code, anything else by kind. */
export function causeOf(err: unknown): FailureCause {
  if (!(err instanceof GatewayError)) return 'error';
  switch (err.code) {
    case 'TIERGATE_ERR_BREAKER_OPEN':
      return 'breaker_open';
    case 'TIERGATE_ERR_SHED_QUEUE_FULL':
    case 'TIERGATE_ERR_SHED_DEADLINE':
    case 'TIERGATE_ERR_SHED_EVERYWHERE':
      return 'shed';
    case 'TIERGATE_ERR_FAULT_INJECTED':
      return 'fault';
  }
  switch (err.kind) {
    case 'overloaded':
      return 'overloaded';
    case 'timeout':
    case 'upstream_timeout':
      return 'timeout';
    case 'unavailable':
      return 'unavailable';
    default:
      return 'error';
  }
}
