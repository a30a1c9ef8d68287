import { ERROR_KINDS, GatewayError, type ErrorKind } from '../errors/gateway-error.js';
import type { RateLimitInfo } from '../errors/rate-limit.js';

/**
 * Every error an HTTP client can see, in one table: HTTP status, OpenAI error `type` and `code`.
 * The body shape is OpenAI's `{ error: { message, type, param, code } }`
 * (https://platform.openai.com/docs/guides/error-codes). The gateway's error kinds
 * (src/errors/gateway-error.ts) each have a row, checked by the compiler; the rest are refusals
 * only the HTTP layer makes (auth, body parsing, routing of URLs). docs/architecture.md "Errors".
 */
interface HttpMapping {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
}

export const GATEWAY_ERROR_HTTP: { readonly [K in ErrorKind]: HttpMapping } = {
  bad_request: { status: 400, type: 'invalid_request_error', code: null },
  not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  context_length: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded' },
  /** No tier can meet the request's latency budget and accuracy floor, and the policy rejects. */
  infeasible: { status: 422, type: 'invalid_request_error', code: 'route_infeasible' },
  overloaded: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  /** The key's own limits (docs/governance.md): OpenAI's answer for the same. */
  rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  /** OpenAI's answer when an account's quota is spent. */
  quota_exceeded: { status: 429, type: 'insufficient_quota', code: 'insufficient_quota' },
  unavailable: { status: 503, type: 'server_error', code: 'service_unavailable' },
  /** The request's deadline passed before a tier could finish it. */
  timeout: { status: 504, type: 'server_error', code: 'deadline_exceeded' },
  /**
   * A tier's attempt ran out of time with the request's deadline still ahead: a gateway timeout
   * (504 is "the upstream did not answer in time", RFC 9110 §15.6.5), but not the client's deadline.
   */
  upstream_timeout: { status: 504, type: 'server_error', code: 'upstream_timeout' },
  /** Every tier failed and the last failure had no kind of its own. */
  upstream_broken: { status: 502, type: 'server_error', code: 'upstream_failed' },
  /** Nobody reads it (the client left); nginx's 499 in logs and metrics. */
  cancelled: { status: 499, type: 'invalid_request_error', code: 'client_closed_request' },
  internal: { status: 500, type: 'server_error', code: 'internal_error' },
};

/** Refusals of the HTTP layer itself, before any generation is asked for. */
const HTTP_ONLY = {
  invalid_json: { status: 400, type: 'invalid_request_error', code: 'invalid_json' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  missing_scope: { status: 403, type: 'invalid_request_error', code: 'insufficient_permissions' },
  route_not_found: { status: 404, type: 'invalid_request_error', code: 'unknown_url' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', code: 'method_not_allowed' },
  body_too_large: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', code: 'unsupported_media_type' },
} as const satisfies Record<string, HttpMapping>;

export type HttpOnlyErrorKind = keyof typeof HTTP_ONLY;
export type ApiErrorKind = ErrorKind | HttpOnlyErrorKind;

const TABLE: { readonly [K in ApiErrorKind]: HttpMapping } = { ...GATEWAY_ERROR_HTTP, ...HTTP_ONLY };

/** Retry-After when the error names none: the client may try again in a second. */
const DEFAULT_RETRY_AFTER: Partial<Record<ApiErrorKind, number>> = {
  overloaded: 1,
  rate_limited: 1,
  unavailable: 1,
};

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error as an HTTP answer: status, OpenAI type and code, and the body to send. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  /** Seconds for a Retry-After header (429 / 503). */
  readonly retryAfter: number | undefined;

  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly param: string | null = null,
    retryAfter?: number,
    /** The key's per-minute limits at a refusal (x-ratelimit-* headers and trailers). */
    readonly rateLimit?: RateLimitInfo,
  ) {
    super(message);
    this.name = 'ApiError';
    const entry = TABLE[kind];
    this.status = entry.status;
    this.type = entry.type;
    this.code = entry.code;
    this.retryAfter = retryAfter ?? DEFAULT_RETRY_AFTER[kind];
  }

  toBody(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Fastify's own error codes (body parsing, routing) translated in one map. */
const fastifyCodes: Record<string, ApiErrorKind> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_VALIDATION: 'bad_request',
};

const BAD_JSON = 'We could not parse the JSON body of your request.';

/** Any thrown value → ApiError. Unknown errors become a 500 whose message reveals nothing. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof GatewayError) {
    // An internal error's message may carry anything (a path, a library's words): not shown.
    if (err.kind === 'internal') return new ApiError('internal', INTERNAL_MESSAGE);
    return new ApiError(err.kind, err.message, err.param, err.retryAfter, err.rateLimit);
  }
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown } | null;
  if (typeof e?.code === 'string') {
    const kind = fastifyCodes[e.code];
    if (kind === 'invalid_json') return new ApiError(kind, BAD_JSON);
    if (kind !== undefined) return new ApiError(kind, String(e.message));
  }
  // A SyntaxError with a 400 status comes from JSON.parse in fastify's body parser.
  if (e?.name === 'SyntaxError' && e.statusCode === 400) return new ApiError('invalid_json', BAD_JSON);
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError('bad_request', String(e.message));
  }
  return new ApiError('internal', INTERNAL_MESSAGE);
}

const INTERNAL_MESSAGE = 'The server had an error while processing your request.';

/** Every gateway error kind (for the error-table test and docs). */
export const GATEWAY_ERROR_KINDS: readonly ErrorKind[] = ERROR_KINDS;
