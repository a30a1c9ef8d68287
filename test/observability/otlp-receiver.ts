import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** One span as OTLP/JSON carries it (ids in hex, times in ns as strings). */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}

export const SERVER = 2;
export const CLIENT = 3;
export const STATUS_ERROR = 2;

/**
 * A tiny OTLP/HTTP receiver: the exporter (@opentelemetry/exporter-trace-otlp-http) POSTs
 * OTLP/JSON to /v1/traces; every span of every export is kept.
 */
export class Receiver {
  readonly spans: OtlpSpan[] = [];
  readonly contentTypes = new Set<string>();
  readonly server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      this.contentTypes.add(String(req.headers['content-type']));
      const doc = JSON.parse(body) as {
        resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) this.spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/v1/traces`;
  }

  /** The spans of one trace once its root span has arrived (exports come every 50 ms). */
  async trace(traceId: string, spans: number): Promise<OtlpSpan[]> {
    for (let i = 0; i < 200; i++) {
      const found = this.spans.filter((s) => s.traceId === traceId);
      if (found.length >= spans && found.some((s) => s.kind === SERVER)) return found;
      await sleep(50);
    }
    return this.spans.filter((s) => s.traceId === traceId);
  }
}

export function attr(span: OtlpSpan | undefined, key: string): unknown {
  const v = span?.attributes?.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  if ('arrayValue' in v) {
    return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(
      (x) => Object.values(x)[0],
    );
  }
  const raw = Object.values(v)[0];
  // OTLP/JSON writes 64-bit integers as strings.
  return 'intValue' in v ? Number(raw) : raw;
}
