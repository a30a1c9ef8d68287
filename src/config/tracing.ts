import { Type, type Static } from '@sinclair/typebox';

/** OpenTelemetry tracing (docs/tracing.md); off by default, and then it costs nothing. */
export const TracingSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    /** OTLP/HTTP traces endpoint (the collector's `/v1/traces`). */
    endpoint: Type.String({ minLength: 1, default: 'http://127.0.0.1:4318/v1/traces' }),
    /** Share of new traces recorded; a client's `traceparent` decides for the traces it continues. */
    samplingRatio: Type.Number({ minimum: 0, maximum: 1, default: 1 }),
    /** `service.name` of the spans. */
    serviceName: Type.String({ minLength: 1, default: 'tiergate' }),
    /** Ended spans are exported in batches this often. */
    exportIntervalMs: Type.Integer({ minimum: 10, default: 1_000 }),
  },
  { additionalProperties: false, default: {} },
);

export type TracingConfig = Static<typeof TracingSchema>;
