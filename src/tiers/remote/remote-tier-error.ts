import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { GatewayError, type ErrorKind } from '../../errors/gateway-error.js';

/**
 * Errors of the remote (gRPC) tier. `code` is stable for callers and logs; `grpcCode` keeps the
 * transport status when there was one; `retryable` says whether another attempt (on this or
 * another tier) can succeed, which the gateway's fallback logic uses.
 */
export type RemoteTierErrorCode =
  /** The server cannot be reached, is restarting or is not SERVING. */
  | 'TG_REMOTE_UNAVAILABLE'
  /** The request's deadline passed (on either side). */
  | 'TG_REMOTE_DEADLINE'
  /** The stream broke mid-generation (connection lost, server crashed, ended without a finish). */
  | 'TG_REMOTE_STREAM_BROKEN'
  /** The server rejected the request (token out of range, prompt too long…). */
  | 'TG_REMOTE_BAD_REQUEST'
  /** The sidecar process could not be started or never became healthy. */
  | 'TG_REMOTE_SPAWN_FAILED'
  /** Any other server-side failure. */
  | 'TG_REMOTE_FAILED'
  /** Invalid tier options (e.g. both or neither of address and spawn). */
  | 'TG_REMOTE_CONFIG';

const RETRYABLE: ReadonlySet<RemoteTierErrorCode> = new Set([
  'TG_REMOTE_UNAVAILABLE',
  'TG_REMOTE_STREAM_BROKEN',
  'TG_REMOTE_SPAWN_FAILED',
]);

/** Each code's kind in the gateway's error model: mapped here, once, at the tier boundary. */
const KIND: { readonly [C in RemoteTierErrorCode]: ErrorKind } = {
  TG_REMOTE_UNAVAILABLE: 'unavailable',
  TG_REMOTE_DEADLINE: 'timeout',
  TG_REMOTE_STREAM_BROKEN: 'upstream_broken',
  TG_REMOTE_BAD_REQUEST: 'bad_request',
  TG_REMOTE_SPAWN_FAILED: 'unavailable',
  TG_REMOTE_FAILED: 'upstream_broken',
  TG_REMOTE_CONFIG: 'internal',
};

export class RemoteTierError extends GatewayError {
  declare readonly code: RemoteTierErrorCode;
  readonly grpcCode: number | undefined;

  constructor(
    code: RemoteTierErrorCode,
    message: string,
    options: { grpcCode?: number; cause?: unknown } = {},
  ) {
    super(KIND[code], message, { code, cause: options.cause, retryable: RETRYABLE.has(code) });
    this.name = 'RemoteTierError';
    this.grpcCode = options.grpcCode;
  }
}

/** Translates a gRPC status into the tier's error; `midStream` marks failures after tokens flowed. */
export function fromGrpcError(tier: string, err: ServiceError, midStream: boolean): RemoteTierError {
  const detail = err.details || err.message;
  const opts = { grpcCode: err.code, cause: err };
  switch (err.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new RemoteTierError('TG_REMOTE_DEADLINE', `tier "${tier}": deadline exceeded (${detail})`, opts);
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
      return new RemoteTierError('TG_REMOTE_BAD_REQUEST', `tier "${tier}": ${detail}`, opts);
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.CANCELLED:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNKNOWN:
      // A connection reset mid-stream surfaces as UNAVAILABLE/INTERNAL (or CANCELLED when the
      // server process dies): to the caller it is one thing, a broken stream.
      if (midStream) {
        return new RemoteTierError(
          'TG_REMOTE_STREAM_BROKEN',
          `tier "${tier}": stream broken (${detail})`,
          opts,
        );
      }
      if (err.code === GrpcStatus.UNAVAILABLE) {
        return new RemoteTierError('TG_REMOTE_UNAVAILABLE', `tier "${tier}": unavailable (${detail})`, opts);
      }
      return new RemoteTierError('TG_REMOTE_FAILED', `tier "${tier}": ${detail}`, opts);
    default:
      return new RemoteTierError(
        'TG_REMOTE_FAILED',
        `tier "${tier}": ${GrpcStatus[err.code] ?? err.code}: ${detail}`,
        opts,
      );
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}
