import { Metadata, status as GrpcStatus, type StatusObject } from '@grpc/grpc-js';
import { toApiError, type ApiError, type ApiErrorKind } from '../errors.js';
import { rateLimitFields } from '../rate-limit-headers.js';

/**
 * The error table (src/api/errors.ts) in gRPC terms: one status per kind, exhaustive (the
 * compiler checks it), following https://grpc.github.io/grpc/core/md_doc_statuscodes.html. The
 * HTTP status, OpenAI code and Retry-After travel as trailing metadata so clients of both APIs
 * can see the same error. docs/architecture.md "Errors".
 */
const CODES: { readonly [K in ApiErrorKind]: GrpcStatus } = {
  bad_request: GrpcStatus.INVALID_ARGUMENT,
  not_found: GrpcStatus.NOT_FOUND,
  context_length: GrpcStatus.INVALID_ARGUMENT,
  // The request is valid but the system is not in a state to meet its budgets.
  infeasible: GrpcStatus.FAILED_PRECONDITION,
  overloaded: GrpcStatus.RESOURCE_EXHAUSTED,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  quota_exceeded: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  timeout: GrpcStatus.DEADLINE_EXCEEDED,
  // The call's own deadline has not passed: DEADLINE_EXCEEDED would tell the client it had.
  // UNAVAILABLE is gRPC's "transient, a retry may succeed".
  upstream_timeout: GrpcStatus.UNAVAILABLE,
  // Every tier failed: UNAVAILABLE tells gRPC clients a retry may succeed.
  upstream_broken: GrpcStatus.UNAVAILABLE,
  cancelled: GrpcStatus.CANCELLED,
  internal: GrpcStatus.INTERNAL,
  invalid_json: GrpcStatus.INVALID_ARGUMENT,
  invalid_api_key: GrpcStatus.UNAUTHENTICATED,
  missing_scope: GrpcStatus.PERMISSION_DENIED,
  route_not_found: GrpcStatus.NOT_FOUND,
  method_not_allowed: GrpcStatus.UNIMPLEMENTED,
  body_too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  unsupported_media_type: GrpcStatus.INVALID_ARGUMENT,
};

export function grpcCodeOf(kind: ApiErrorKind): GrpcStatus {
  return CODES[kind];
}

/** Any error → the status to end the call with (the ApiError is returned for logging). */
export function toGrpcStatus(err: unknown): { status: Partial<StatusObject>; apiError: ApiError } {
  const apiError = toApiError(err);
  const metadata = new Metadata();
  metadata.set('x-tiergate-error-code', apiError.code ?? apiError.type);
  metadata.set('x-tiergate-http-status', String(apiError.status));
  if (apiError.param !== null) metadata.set('x-tiergate-error-param', apiError.param);
  if (apiError.retryAfter !== undefined) metadata.set('retry-after', String(apiError.retryAfter));
  for (const [name, value] of Object.entries(rateLimitFields(apiError.rateLimit))) metadata.set(name, value);
  return { status: { code: CODES[apiError.kind], details: apiError.message, metadata }, apiError };
}
