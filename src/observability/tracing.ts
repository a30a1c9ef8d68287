import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { TracingConfig } from '../config/tracing.js';

/** W3C trace-context fields (`traceparent`, `tracestate`) as they cross a process boundary. */
export type TraceHeaders = Readonly<Record<string, string>>;

export type SpanKindName = 'server' | 'client' | 'internal';

const KINDS: Readonly<Record<SpanKindName, SpanKind>> = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  internal: SpanKind.INTERNAL,
};

/** A span's times: performance.now() values of this process, turned into epoch time for export. */
const EPOCH_OFFSET_MS = Date.now() - performance.now();

/** performance.now() milliseconds as the epoch milliseconds OpenTelemetry's time inputs take. */
export function epochMs(perfNow: number): number {
  return EPOCH_OFFSET_MS + perfNow;
}

/**
 * OpenTelemetry tracing of one gateway (docs/tracing.md): its own tracer provider, sampler and
 * OTLP/HTTP exporter, never the process-global ones (tests run several gateways in one process),
 * and parent contexts passed explicitly, so no context manager runs on the request path. Built
 * only with `tracing.enabled`: with it off nothing here exists, and the request path tests one
 * field for undefined.
 */
export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(config: TracingConfig, logger: Logger) {
    const exporter = new OTLPTraceExporter({ url: config.endpoint });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName }),
      // A client's sampled traceparent is followed; new traces are sampled at the ratio.
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplingRatio) }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.exportIntervalMs })],
    });
    this.tracer = this.provider.getTracer('tiergate');
    logger.info(
      { endpoint: config.endpoint, samplingRatio: config.samplingRatio },
      'tracing: exporting spans over OTLP/HTTP',
    );
  }

  /**
   * A request's root span, continuing the caller's trace when its `traceparent` is valid; a
   * malformed one is ignored (a new trace starts), never an error.
   */
  startSpan(
    name: string,
    kind: SpanKindName,
    parent: TraceHeaders | undefined,
    attributes: Attributes,
    startTime: number,
  ): TraceSpan {
    const ctx =
      parent === undefined
        ? ROOT_CONTEXT
        : this.propagator.extract(ROOT_CONTEXT, parent, defaultTextMapGetter);
    return new TraceSpan(
      this,
      this.tracer.startSpan(name, { kind: KINDS[kind], attributes, startTime: epochMs(startTime) }, ctx),
    );
  }

  /** A child of `parent`; times are performance.now() values. */
  childOf(parent: Span, name: string, kind: SpanKindName, attributes?: Attributes, startTime?: number): Span {
    return this.tracer.startSpan(
      name,
      { kind: KINDS[kind], attributes, startTime: startTime === undefined ? undefined : epochMs(startTime) },
      trace.setSpan(ROOT_CONTEXT, parent),
    );
  }

  /** The W3C headers naming `span` as the parent of the next hop. */
  headersOf(span: Span): TraceHeaders {
    const out: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, defaultTextMapSetter);
    return out;
  }

  /** Exports every ended span now (tests, shutdown). */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** One span: attributes, children, an error status, its W3C headers for the next process. */
export class TraceSpan {
  constructor(
    private readonly tracing: Tracing,
    private readonly span: Span,
  ) {}

  /** The trace's id (32 hex digits), for log correlation. */
  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  /** False when the sampler dropped the trace: its spans are not exported. */
  get sampled(): boolean {
    return (this.span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
  }

  set(key: string, value: AttributeValue | undefined): void {
    if (value !== undefined) this.span.setAttribute(key, value);
  }

  child(
    name: string,
    kind: SpanKindName = 'internal',
    attributes?: Attributes,
    startTime?: number,
  ): TraceSpan {
    return new TraceSpan(this.tracing, this.tracing.childOf(this.span, name, kind, attributes, startTime));
  }

  /** Marks the span's work as failed: error status with the message, and the exception event. */
  fail(err: unknown, type?: string): void {
    const message = err instanceof Error ? err.message : String(err);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    if (type !== undefined) this.span.setAttribute('error.type', type);
    if (err instanceof Error) this.span.recordException(err);
  }

  /** The `traceparent` (and `tracestate`) naming this span as the parent. */
  headers(): TraceHeaders {
    return this.tracing.headersOf(this.span);
  }

  /** Ends the span, at `endTime` (performance.now()) or now. */
  end(endTime?: number): void {
    this.span.end(endTime === undefined ? undefined : epochMs(endTime));
  }
}

/**
 * The trace context of each running generation by request id, for the one tier that crosses a
 * process boundary: the remote tier sends it as gRPC metadata (docs/tracing.md), finding it by
 * the request id every tier request carries. Filled by the Execution only when tracing is on.
 * (Not an AsyncLocalStorage: on Node 20 its first use installs promise hooks that every promise
 * of the process pays for from then on.) Two running requests with the same id (a client's
 * x-request-id used twice at once) get no context, rather than each other's.
 */
const running = new Map<string, { headers: TraceHeaders | undefined; count: number }>();

/** Names `headers` as the trace context of request `requestId` until `releaseTraceContext`. */
export function holdTraceContext(requestId: string, headers: TraceHeaders): void {
  const held = running.get(requestId);
  if (held === undefined) running.set(requestId, { headers, count: 1 });
  else {
    held.headers = undefined;
    held.count++;
  }
}

export function releaseTraceContext(requestId: string): void {
  const held = running.get(requestId);
  if (held !== undefined && --held.count <= 0) running.delete(requestId);
}

/** The trace context of a running request, if tracing is on and the id is its own. */
export function traceContextOfRequest(requestId: string | undefined): TraceHeaders | undefined {
  return requestId === undefined ? undefined : running.get(requestId)?.headers;
}
