import { randomUUID } from 'node:crypto';
import { Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Gateway } from '../../gateway/gateway.js';
import { roundMs, writeRequestSummary } from '../../observability/request-summary.js';
import type { Execution } from '../../service/execution.js';
import { Cancellation, type CancelSignal } from '../../tiers/cancellation.js';
import type { Denial } from '../auth.js';
import { traceContextOf } from '../trace-context.js';
import { resilienceFields } from '../resilience-fields.js';
import { rateLimitFields } from '../rate-limit-headers.js';
import { toGrpcStatus } from './grpc-status.js';

/** What unary and streaming calls share (grpc-js does not export ServerSurfaceCall). */
type SurfaceCall = ServerUnaryCall<unknown, unknown>;

/** A request id from the client is honoured if it looks sane (as on HTTP, src/api/app.ts). */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * A cancel this close to the deadline is the deadline's doing. The server's deadline is the
 * client's plus the time the call took to arrive, and the client cancels at its own: on a loaded
 * machine that skew reached tens of ms (a client deadline of 300 ms was counted as a cancel).
 */
const DEADLINE_SLACK_MS = 100;

/** The key name each admitted call authenticated with (src/api/grpc/guard.ts), by call. */
const keysByCall = new WeakMap<object, string>();

/** Records the name of the key a call was admitted with, for its CallContext. */
export function rememberKey(call: object, name: string): void {
  keysByCall.set(call, name);
}

/**
 * One gRPC call as the transport sees it, the counterpart of the HTTP request context: id,
 * authenticated key, a signal that fires when the client cancels (or its deadline passes), the
 * deadline, and the one summary line and request metrics when the call ends. The generation's
 * own state lives in its Execution (src/service/execution.ts).
 */
export class CallContext {
  readonly requestId: string;
  readonly startedAt = performance.now();
  readonly signal: CancelSignal;
  /** The call's gRPC deadline in ms since the epoch, if the client set one. */
  readonly deadline: number | undefined;
  /** Name of the key the call presented, when it matched one (auth on; checked in guard.ts). */
  apiKey: string | undefined;
  /** Why auth refused the call. */
  denied: Denial | undefined;
  /** The generation this call runs, once it asked for one. */
  execution: Execution | undefined;
  /** The client's W3C trace context from the call's metadata (docs/tracing.md). */
  readonly traceContext: Readonly<Record<string, string>> | undefined;
  /** The model an Explain call asked about (a generation's is its execution's). */
  model: string | undefined;
  private readonly controller = new Cancellation();

  constructor(
    private readonly gateway: Gateway,
    private readonly method: string,
    call: Pick<SurfaceCall, 'metadata' | 'getDeadline' | 'once'>,
    readonly log: Logger,
  ) {
    this.requestId = requestIdOf(call.metadata);
    this.apiKey = keysByCall.get(call);
    this.traceContext = traceContextOf({
      traceparent: call.metadata.get('traceparent')[0],
      tracestate: call.metadata.get('tracestate')[0],
    });
    const d = call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : d;
    this.deadline = Number.isFinite(ms) ? ms : undefined;
    // grpc-js cancels the call when its deadline passes (the client already got
    // DEADLINE_EXCEEDED): that is a timeout for logs and metrics, not a client gone away.
    call.once('cancelled', () => {
      // (Timers may fire a few ms either side of the deadline's millisecond.)
      const timedOut = this.deadline !== undefined && Date.now() >= this.deadline - DEADLINE_SLACK_MS;
      this.controller.abort(
        timedOut
          ? new GatewayError('timeout', 'The request deadline passed before it completed.')
          : new GatewayError('cancelled', 'call cancelled by the client'),
      );
    });
    this.signal = this.controller.signal;
  }

  /**
   * Request metrics and the summary line, through the writer HTTP uses; the status is the HTTP
   * equivalent of the call's ending. Returns the gRPC status to end a failed call with.
   */
  /**
   * Trailing metadata of a call that succeeded: the key's x-ratelimit-* fields, as HTTP sends
   * them as headers on every answer of a key with per-minute limits (a refusal carries them in
   * its status's metadata, grpc-status.ts).
   */
  successTrailers(): Metadata | undefined {
    const fields = rateLimitFields(this.execution?.rateLimit);
    let metadata: Metadata | undefined;
    for (const [name, value] of Object.entries(fields)) (metadata ??= new Metadata()).set(name, value);
    return metadata;
  }

  finish(err: unknown): ReturnType<typeof toGrpcStatus> | undefined {
    const failure =
      err === undefined ? undefined : toGrpcStatus(this.signal.aborted ? this.signal.reason : err);
    // Settled already when it ran; otherwise (the call failed before running it) it settles now.
    this.execution?.abort();
    // A failure after attempts says which tiers ran and why it moved on, as HTTP's headers do.
    if (failure !== undefined && this.execution !== undefined) {
      for (const [name, value] of Object.entries(resilienceFields(this.execution.record)))
        failure.status.metadata?.set(name, value);
    }
    const status = failure === undefined ? 200 : failure.apiError.status;
    const exec = this.execution?.fields();
    const labels = { route: this.method, tier: exec?.tier ?? 'none', status: String(status) };
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.gateway.metrics.requests.inc(labels);
    this.gateway.metrics.requestDuration.observe(labels, seconds);
    if (failure?.apiError.kind === 'internal')
      this.log.error({ err, requestId: this.requestId }, 'request failed');
    const cancelled = this.signal.aborted && (this.signal.reason as GatewayError).kind === 'cancelled';
    writeRequestSummary(this.log, {
      requestId: this.requestId,
      transport: 'grpc',
      method: this.method,
      route: this.method,
      status,
      apiKey: this.apiKey,
      denied: this.denied,
      model: exec?.model ?? this.model,
      tier: exec?.tier,
      policy: exec?.policy,
      routeReason: exec?.routeReason,
      stream: exec?.stream ?? false,
      promptTokens: exec?.promptTokens ?? 0,
      completionTokens: exec?.completionTokens ?? 0,
      ttftMs: exec?.ttftMs === undefined ? undefined : roundMs(exec.ttftMs),
      durationMs: roundMs(seconds * 1000),
      finishReason: exec?.finishReason,
      error: failure === undefined ? undefined : (failure.apiError.code ?? failure.apiError.type),
      aborted: cancelled ? true : undefined,
      servedBy: exec?.servedBy,
      continuedFrom: exec?.continuedFrom,
      fallbacks: exec?.fallbacks,
      traceId: exec?.traceId,
    });
    return failure;
  }
}

function requestIdOf(metadata: Metadata): string {
  const given = metadata.get('x-request-id')[0];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}
