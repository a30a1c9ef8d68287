import type { Logger } from 'pino';

/** The fields of a request's summary line, the same for HTTP and gRPC, in the order written. */
export interface RequestSummary {
  readonly requestId: string;
  /** `http` or `grpc`. */
  readonly transport: 'http' | 'grpc';
  /** HTTP method, or the gRPC method's path. */
  readonly method: string;
  /** The route template fastify matched, or the gRPC method's path. */
  readonly route: string;
  /** HTTP status, or the HTTP status equivalent of the gRPC call's ending (src/api/errors.ts). */
  readonly status: number;
  /** Name of the API key that matched (never the key). */
  readonly apiKey?: string | undefined;
  /** Why auth refused the request (src/api/auth.ts). */
  readonly denied?: string | undefined;
  readonly model?: string | undefined;
  readonly tier?: string | undefined;
  readonly policy?: string | undefined;
  readonly routeReason?: string | undefined;
  readonly stream?: boolean | undefined;
  readonly promptTokens?: number | undefined;
  readonly completionTokens?: number | undefined;
  readonly ttftMs?: number | undefined;
  readonly durationMs: number;
  readonly finishReason?: string | undefined;
  readonly error?: string | undefined;
  readonly aborted?: true | undefined;
  readonly servedBy?: readonly string[] | undefined;
  readonly continuedFrom?: string | undefined;
  readonly fallbacks?: readonly object[] | undefined;
  /** The request's trace id when tracing is on and the trace is sampled (docs/tracing.md). */
  readonly traceId?: string | undefined;
}

/**
 * The one writer of the per-request summary line, for both transports: an ordinary pino `info`
 * line through the logger's public API, so the logger's `redact` paths (always the
 * authorization header, plus `logging.redact`) apply to it as to every other line. Fields left
 * undefined are not written.
 */
export function writeRequestSummary(logger: Logger, summary: RequestSummary): void {
  logger.info(summary, 'request');
}

/** Milliseconds rounded to hundredths, as the summary line shows them. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
