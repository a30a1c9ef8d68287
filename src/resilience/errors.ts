/**
 * The resilience layer's typed errors. `code` is what src/api/errors.ts maps to an HTTP status;
 * `retryAfterSeconds` becomes the Retry-After header. One place, so the status table stays whole.
 */
export type ResilienceErrorCode =
  /** The tier's admission queue is full. → 429 */
  | 'TIERGATE_ERR_SHED_QUEUE_FULL'
  /** Waiting for a slot would outlast the request's deadline. → 503 */
  | 'TIERGATE_ERR_SHED_DEADLINE'
  /** The tier's circuit breaker is open. → 503 */
  | 'TIERGATE_ERR_BREAKER_OPEN'
  /** The request's deadline passed before it could finish. → 504 */
  | 'TIERGATE_ERR_DEADLINE'
  /** One attempt ran past its own time limit (the request may continue elsewhere). → 504 */
  | 'TIERGATE_ERR_ATTEMPT_TIMEOUT'
  /** A failure injected by config (`resilience.*.fault`). → 503 */
  | 'TIERGATE_ERR_FAULT_INJECTED';

export class ResilienceError extends Error {
  constructor(
    readonly code: ResilienceErrorCode,
    message: string,
    readonly tier: string | undefined,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ResilienceError';
  }
}

/** Every attempt of a request failed; the last failure decides the status (502 when it has none). */
export class AllTiersFailedError extends Error {
  readonly code = 'TIERGATE_ERR_ALL_TIERS_FAILED';
  constructor(
    readonly tiers: readonly string[],
    readonly last: unknown,
  ) {
    super(
      `all tiers failed (${tiers.join(' → ') || 'none tried'}): ${last instanceof Error ? last.message : String(last)}`,
      { cause: last },
    );
    this.name = 'AllTiersFailedError';
  }
}

/**
 * Whether another attempt (on another tier) can succeed after `err`. Client mistakes (a prompt
 * the model cannot take) fail the same way everywhere, so they end the request at once.
 */
export function isRetryable(err: unknown): boolean {
  const e = err as { retryable?: unknown; code?: unknown } | null;
  if (e === null || typeof e !== 'object') return true;
  if (e.retryable === false) return false;
  return !(typeof e.code === 'string' && /BAD_REQUEST|CONTEXT_LENGTH/.test(e.code));
}

/** Why an attempt did not serve the request; the `cause` label of the fallback metric. */
export type FailureCause =
  'error' | 'timeout' | 'breaker_open' | 'shed' | 'overloaded' | 'unavailable' | 'fault';

export function causeOf(err: unknown): FailureCause {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'TIERGATE_ERR_BREAKER_OPEN':
      return 'breaker_open';
    case 'TIERGATE_ERR_SHED_QUEUE_FULL':
    case 'TIERGATE_ERR_SHED_DEADLINE':
      return 'shed';
    case 'TIERGATE_ERR_TIER_OVERLOADED':
      return 'overloaded';
    case 'TIERGATE_ERR_ATTEMPT_TIMEOUT':
    case 'TIERGATE_ERR_DEADLINE':
    case 'TG_REMOTE_DEADLINE':
      return 'timeout';
    case 'TIERGATE_ERR_TIER_UNAVAILABLE':
    case 'TG_REMOTE_UNAVAILABLE':
    case 'TG_ONNX_NOT_STARTED':
    case 'TG_ONNX_CLOSED':
      return 'unavailable';
    case 'TIERGATE_ERR_FAULT_INJECTED':
      return 'fault';
    default:
      return 'error';
  }
}
