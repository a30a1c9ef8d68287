import assert from 'node:assert/strict';
import { Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { echoConfig, startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { call, gatewayClients, stream, type GatewayClients } from '../api/grpc/grpc-client.js';

/**
 * A real gateway (echo tiers, byte tokenizer) with HTTP and gRPC on, whose tiers cover every
 * ending of a request: `a` and `b` serve; `bad` fails before its first token and falls back to
 * `a`; `breaks` fails after 3 tokens and is continued on `a`; `slow` streams a token per 30 ms;
 * `hang` never answers (the request deadline, 400 ms, ends it); `stuck` never answers either, but
 * its attempt limit (100 ms) ends it first. `routed` goes through a policy.
 */
export function parityConfig(): Record<string, unknown> {
  const noBreaker = { breaker: { enabled: false } };
  return echoConfig({
    logging: { level: 'info' },
    grpc: { enabled: true, host: '127.0.0.1', port: 0 },
    tiers: {
      a: { kind: 'echo', contextLength: 256 },
      b: { kind: 'echo', contextLength: 256 },
      bad: { kind: 'echo', contextLength: 256 },
      breaks: { kind: 'echo', contextLength: 256, batchTokens: 1 },
      slow: { kind: 'echo', contextLength: 256, tokenDelayMs: 30 },
      hang: { kind: 'echo', contextLength: 256 },
      stuck: { kind: 'echo', contextLength: 256 },
    },
    models: {
      static: { tier: 'a' },
      routed: { tier: 'a' },
      failover: { tier: 'bad' },
      continued: { tier: 'breaks' },
      slow: { tier: 'slow' },
      hang: { tier: 'hang' },
      stuck: { tier: 'stuck' },
    },
    routing: {
      byModel: { routed: 'p' },
      policies: {
        p: { tiers: ['a', 'b'], objective: 'cheapest', costPer1kTokens: { a: 2, b: 1 }, fallback: ['a'] },
      },
    },
    resilience: {
      requestTimeoutMs: 400,
      // Every retry these tests make is allowed, however fast they run.
      retryBudget: { ratio: 1, minPerSecond: 100, windowMs: 10_000 },
      tiers: {
        bad: { ...noBreaker, fault: { errorRate: 1 }, fallbacks: ['a'] },
        breaks: { ...noBreaker, fault: { failAfterTokensRate: 1, failAfterTokens: 3 }, fallbacks: ['a'] },
        hang: { ...noBreaker, fault: { hangRate: 1 } },
        stuck: { ...noBreaker, fault: { hangRate: 1 }, attemptTimeoutMs: 100 },
      },
    },
  });
}

/**
 * A harness on the committed tiny family (its GGUF tokenizer), gRPC on and summary lines
 * captured, with the test's tiers, models, routing and resilience.
 */
export function startTinyHarness(extra: Record<string, unknown>): Promise<Harness> {
  return startHarness({
    logging: { level: 'info' },
    grpc: { enabled: true, host: '127.0.0.1', port: 0 },
    family: { dir: 'models/tiny' },
    ...extra,
  });
}

/** A llama.cpp tier on the tiny family's Q4_K_M GGUF, one thread. */
export function tinyLlamaTier(sequences: number): Record<string, unknown> {
  return { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences };
}

export interface Harness {
  readonly gw: TestGateway;
  readonly grpc: GatewayClients;
  readonly lines: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startHarness(config = parityConfig()): Promise<Harness> {
  const lines: Record<string, unknown>[] = [];
  const gw = await startGateway(config, 'unused', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  assert.ok(gw.grpcAddress);
  const grpc = gatewayClients(gw.grpcAddress);
  return {
    gw,
    grpc,
    lines,
    close: async () => {
      grpc.close();
      await gw.shutdown();
    },
  };
}

/** The summary line of a request, once written. */
export async function summaryOf(h: Harness, requestId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const line = h.lines.find((l) => l.requestId === requestId && l.msg === 'request');
    if (line !== undefined) return line;
    await sleep(10);
  }
  throw new Error(`no summary line for ${requestId}`);
}

/** Waits until no execution, running stream or queued request is left. */
export async function idle(h: Harness): Promise<{ executions: number; running: number; queued: number }> {
  let o = h.gw.service.occupancy();
  for (let i = 0; i < 200 && (o.executions > 0 || o.running > 0 || o.queued > 0); i++) {
    await sleep(10);
    o = h.gw.service.occupancy();
  }
  return o;
}

/** Every series of /metrics that a request's ending moves, minus transport and timing ones. */
export async function metricSnapshot(h: Harness): Promise<Map<string, number>> {
  const text = await (await fetch(`${h.gw.baseUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    const series = line.slice(0, at);
    // Request counts carry the transport's route label; times and process figures vary by run.
    if (/^tiergate_(requests_total|request_duration|process_|nodejs_)/.test(series)) continue;
    if (/_(bucket|sum)\{|_(bucket|sum) /.test(`${series} `)) continue;
    out.set(series, Number(line.slice(at + 1)));
  }
  return out;
}

export function deltas(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Samples each tier's latency model holds (a completed request adds one to the tier it credits). */
export function latencySamples(h: Harness): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [tier, p] of Object.entries(h.gw.gateway.router.snapshot())) out[tier] = p.samples;
  return out;
}

export interface Ending {
  status: number;
  route: { policy: string; code: string; tier: string; servedBy: string[] } | undefined;
}

/** An HTTP completion (streamed or not); `abortAfterChunks` leaves after that many SSE events. */
export async function httpCompletion(
  h: Harness,
  requestId: string,
  model: string,
  stream: boolean,
  abortAfterChunks?: number,
): Promise<Ending> {
  const controller = new AbortController();
  const res = await fetch(`${h.gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model, prompt: 'hello world', max_tokens: 8, temperature: 0, stream }),
    signal: controller.signal,
  });
  const route =
    res.headers.get('x-tiergate-policy') === null
      ? undefined
      : {
          policy: res.headers.get('x-tiergate-policy')!,
          code: res.headers.get('x-tiergate-route-reason')!.split(':')[0]!,
          tier: res.headers.get('x-tiergate-tier') ?? '',
          servedBy: (res.headers.get('x-tiergate-served-by') ?? '').split(', ').filter((t) => t !== ''),
        };
  if (abortAfterChunks === undefined) {
    const text = await res.text();
    // A stream reports the tiers that served it in trailers; the body's chunks are enough here.
    if (route !== undefined && stream) route.servedBy = [];
    void text;
    return { status: res.status, route };
  }
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/^data: /gm) ?? []).length < abortAfterChunks) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  controller.abort();
  return { status: res.status, route };
}

/** The same completion over gRPC; `cancelAfterChunks` cancels the call after that many chunks. */
export async function grpcCompletion(
  h: Harness,
  requestId: string,
  model: string,
  streamed: boolean,
  cancelAfterChunks?: number,
): Promise<Ending> {
  const md = new Metadata();
  md.set('x-request-id', requestId);
  const request = { model, prompt: 'hello world', options: { maxTokens: 8, temperature: 0 } };
  if (!streamed) {
    try {
      const res = await call<{ route: Ending['route'] }>(h.grpc.gateway, 'Complete', request, md);
      return { status: 200, route: res.route };
    } catch (err) {
      return { status: httpStatusOf(err), route: undefined };
    }
  }
  const s: ClientReadableStream<{ route: Ending['route'] | null }> = stream(
    h.grpc.gateway,
    'CompleteStream',
    request,
    md,
  );
  let route: Ending['route'];
  let chunks = 0;
  try {
    for await (const m of s as AsyncIterable<{ route: Ending['route'] | null }>) {
      if (m.route) route = m.route;
      if (cancelAfterChunks !== undefined && ++chunks >= cancelAfterChunks) {
        s.cancel();
        break;
      }
    }
    return { status: 200, route };
  } catch (err) {
    return { status: httpStatusOf(err), route };
  }
}

function httpStatusOf(err: unknown): number {
  const md = (err as { metadata?: Metadata }).metadata;
  return Number(md?.get('x-tiergate-http-status')[0] ?? 0);
}
