import { randomUUID } from 'node:crypto';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';

/** What unary and streaming calls share (grpc-js does not export ServerSurfaceCall). */
type SurfaceCall = ServerUnaryCall<unknown, unknown>;
import type { Logger } from 'pino';
import type { Gateway } from '../../gateway/gateway.js';
import { ApiError } from '../errors.js';
import type { Denial } from '../auth.js';
import { toGrpcStatus } from './grpc-status.js';
import { Cancellation, type CancelSignal } from '../../tiers/cancellation.js';

/** A request id from the client is honoured if it looks sane (as on HTTP, src/api/app.ts). */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** A cancel this close to the deadline is the deadline's doing. */
const DEADLINE_SLACK_MS = 20;

/** The key name each admitted call authenticated with (src/api/grpc/guard.ts), by call. */
const keysByCall = new WeakMap<object, string>();

/** Records the name of the key a call was admitted with, for its CallContext. */
export function rememberKey(call: object, name: string): void {
  keysByCall.set(call, name);
}

/**
 * One gRPC call's state, the counterpart of the HTTP request context: id, authenticated key,
 * a signal that fires when the client cancels or the gateway shuts down, the deadline, and
 * what the summary log line and request metrics need.
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
  model: string | undefined;
  tier: string | undefined;
  policy: string | undefined;
  routeReason: string | undefined;
  promptTokens = 0;
  completionTokens = 0;
  ttftMs: number | undefined;
  finishReason: string | undefined;
  aborted = false;
  private readonly controller = new Cancellation();
  private readonly onShutdown: () => void;

  constructor(
    private readonly gateway: Gateway,
    private readonly method: string,
    call: Pick<SurfaceCall, 'metadata' | 'getDeadline' | 'once'>,
    readonly log: Logger,
  ) {
    this.requestId = requestIdOf(call.metadata);
    this.apiKey = keysByCall.get(call);
    const d = call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : d;
    this.deadline = Number.isFinite(ms) ? ms : undefined;
    // grpc-js cancels the call when its deadline passes (the client already got
    // DEADLINE_EXCEEDED): that is a timeout for logs and metrics, not a client gone away.
    call.once('cancelled', () => {
      // (Timers may fire a few ms either side of the deadline's millisecond.)
      const timedOut = this.deadline !== undefined && Date.now() >= this.deadline - DEADLINE_SLACK_MS;
      this.aborted = !timedOut;
      this.controller.abort(
        timedOut
          ? new ApiError('gateway_timeout', 'The request deadline passed before it completed.')
          : new ApiError('invalid_request', 'call cancelled by the client'),
      );
    });
    this.signal = this.controller.signal;
    // Removed again in finish(), which every call reaches exactly once.
    const shutdown = gateway.shutdownSignal;
    this.onShutdown = () => this.controller.abort(shutdown.reason);
    if (shutdown.aborted) this.onShutdown();
    else shutdown.addEventListener('abort', this.onShutdown);
  }

  /** Request metrics and one summary line, as HTTP's (src/api/request-context.ts); status is the HTTP-equivalent. */
  finish(err: unknown): ReturnType<typeof toGrpcStatus> | undefined {
    this.gateway.shutdownSignal.removeEventListener('abort', this.onShutdown);
    const failure =
      err === undefined ? undefined : toGrpcStatus(this.signal.aborted ? this.signal.reason : err);
    const status = failure === undefined ? 200 : failure.apiError.status;
    const labels = { route: this.method, tier: this.tier ?? 'none', status: String(status) };
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.gateway.metrics.requests.inc(labels);
    this.gateway.metrics.requestDuration.observe(labels, seconds);
    if (failure?.apiError.kind === 'internal')
      this.log.error({ err, requestId: this.requestId }, 'request failed');
    this.log.info(
      {
        requestId: this.requestId,
        transport: 'grpc',
        method: this.method,
        status,
        apiKey: this.apiKey,
        denied: this.denied,
        model: this.model,
        tier: this.tier,
        policy: this.policy,
        routeReason: this.routeReason,
        promptTokens: this.promptTokens,
        completionTokens: this.completionTokens,
        ttftMs: this.ttftMs === undefined ? undefined : Math.round(this.ttftMs * 100) / 100,
        durationMs: Math.round(seconds * 100_000) / 100,
        finishReason: this.finishReason,
        error: failure === undefined ? undefined : (failure.apiError.code ?? failure.apiError.type),
        aborted: this.aborted ? true : undefined,
      },
      'request',
    );
    return failure;
  }
}

function requestIdOf(metadata: Metadata): string {
  const given = metadata.get('x-request-id')[0];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}
