/** Longest `traceparent` / `tracestate` taken (W3C: 55 characters and 512 list members). */
const MAX_LENGTH = 8192;

/**
 * A client's W3C trace context from its HTTP headers or gRPC metadata (docs/tracing.md): the
 * two fields as given, when present. Whether `traceparent` is well formed is the propagator's
 * business: a malformed one is ignored there (a new trace starts), never an error.
 */
export function traceContextOf(fields: {
  readonly traceparent?: unknown;
  readonly tracestate?: unknown;
}): Readonly<Record<string, string>> | undefined {
  const parent = fields.traceparent;
  if (typeof parent !== 'string' || parent.length > MAX_LENGTH) return undefined;
  const state = fields.tracestate;
  return typeof state === 'string' && state.length <= MAX_LENGTH
    ? { traceparent: parent, tracestate: state }
    : { traceparent: parent };
}
