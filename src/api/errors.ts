/**
 * Every error a client can see, in one table (STYLE.md): HTTP status, OpenAI error `type` and
 * `code`. The body shape is OpenAI's `{ error: { message, type, param, code } }`
 * (https://platform.openai.com/docs/guides/error-codes).
 */
const table = {
  invalid_request: { status: 400, type: 'invalid_request_error', code: null },
  invalid_json: { status: 400, type: 'invalid_request_error', code: 'invalid_json' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  missing_scope: { status: 403, type: 'invalid_request_error', code: 'insufficient_permissions' },
  model_not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found' },
  route_not_found: { status: 404, type: 'invalid_request_error', code: 'unknown_url' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', code: 'method_not_allowed' },
  /** No tier can meet the request's latency budget and accuracy floor, and the policy rejects. */
  route_infeasible: { status: 422, type: 'invalid_request_error', code: 'route_infeasible' },
  body_too_large: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', code: 'unsupported_media_type' },
  rate_limited: { status: 429, type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  internal: { status: 500, type: 'server_error', code: 'internal_error' },
  not_ready: { status: 503, type: 'server_error', code: 'service_unavailable' },
  /** Every tier failed and the last failure had no status of its own. */
  bad_gateway: { status: 502, type: 'server_error', code: 'upstream_failed' },
  /** The request's deadline passed before a tier could finish it. */
  gateway_timeout: { status: 504, type: 'server_error', code: 'deadline_exceeded' },
} as const;

export type ApiErrorKind = keyof typeof table;

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;

  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly param: string | null = null,
    /** Seconds for a Retry-After header (429 / 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    const entry = table[kind];
    this.status = entry.status;
    this.type = entry.type;
    this.code = entry.code;
  }

  toBody(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Fastify's own error codes (body parsing, routing) translated in one map. */
const fastifyCodes: Record<string, ApiErrorKind> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_VALIDATION: 'invalid_request',
};

/** Any thrown value → ApiError. Unknown errors become a 500 whose message reveals nothing. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown };
  if (typeof e.code === 'string') {
    const kind = fastifyCodes[e.code];
    if (kind === 'invalid_json')
      return new ApiError(kind, 'We could not parse the JSON body of your request.');
    if (kind !== undefined) return new ApiError(kind, String(e.message));
    if (e.code === 'TIERGATE_ERR_TIER_OVERLOADED')
      return new ApiError('rate_limited', String(e.message), null, 1);
    if (e.code === 'TIERGATE_ERR_TIER_UNAVAILABLE')
      return new ApiError('not_ready', String(e.message), null, 5);
    const resilience = fromResilienceError(e.code, err);
    if (resilience !== undefined) return resilience;
  }
  // A SyntaxError with a 400 status comes from JSON.parse in fastify's body parser.
  if (e.name === 'SyntaxError' && e.statusCode === 400) {
    return new ApiError('invalid_json', 'We could not parse the JSON body of your request.');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError('invalid_request', String(e.message));
  }
  return new ApiError('internal', 'The server had an error while processing your request.');
}

/**
 * The resilience layer's codes (src/resilience/errors.ts) and the remote tier's TG_REMOTE_*:
 * shed for capacity → 429, unavailable / breaker open / shed for the deadline → 503,
 * deadline → 504. All tiers failed → the last failure's status, or 502 when it has none.
 */
function fromResilienceError(code: string, err: unknown): ApiError | undefined {
  const e = err as { message?: unknown; retryAfterSeconds?: unknown; last?: unknown };
  const message = String(e.message);
  const retryAfter = typeof e.retryAfterSeconds === 'number' ? e.retryAfterSeconds : undefined;
  switch (code) {
    case 'TIERGATE_ERR_SHED_QUEUE_FULL':
      return new ApiError('rate_limited', message, null, retryAfter ?? 1);
    case 'TIERGATE_ERR_SHED_DEADLINE':
    case 'TIERGATE_ERR_BREAKER_OPEN':
    case 'TIERGATE_ERR_FAULT_INJECTED':
    case 'TG_REMOTE_UNAVAILABLE':
    case 'TG_REMOTE_SPAWN_FAILED':
      return new ApiError('not_ready', message, null, retryAfter ?? 1);
    case 'TIERGATE_ERR_DEADLINE':
    case 'TIERGATE_ERR_ATTEMPT_TIMEOUT':
    case 'TG_REMOTE_DEADLINE':
      return new ApiError('gateway_timeout', message);
    case 'TG_REMOTE_BAD_REQUEST':
      return new ApiError('invalid_request', message);
    case 'TIERGATE_ERR_ALL_TIERS_FAILED': {
      const last = toApiError(e.last);
      // The client sees the last tier's failure; an unexplained one is the upstream's (502).
      return last.kind === 'internal' ? new ApiError('bad_gateway', message) : last;
    }
    default:
      return undefined;
  }
}
