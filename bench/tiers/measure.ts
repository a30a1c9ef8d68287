/**
 * What bench:tiers measures, through the Tier interface only (so every kind is measured the same
 * way, including its threading and IPC): greedy generation of a fixed number of tokens with no
 * stop tokens, so every stream produces exactly that many.
 */
import type { GenerateRequest, Tier } from '../../src/tiers/tier.js';

export interface StreamTiming {
  /** Request start → first token. */
  readonly ttftMs: number;
  /** Gaps between consecutive tokens. */
  readonly gapsMs: readonly number[];
  readonly tokens: number;
  /** Request start → last token. */
  readonly totalMs: number;
}

export interface SingleStreamResult {
  /** Decode tokens/s after the first token: (n - 1) / (last - first); best of the runs. */
  readonly decodeTps: number;
  /** Median over the runs. */
  readonly ttftMs: number;
  /** Inter-token latency percentiles over every gap of every run. */
  readonly itlP50Ms: number;
  readonly itlP99Ms: number;
}

export function greedyRequest(prompt: readonly number[], tokens: number): GenerateRequest {
  return {
    tokens: prompt,
    sampling: { temperature: 0, topK: 0, topP: 1 },
    maxTokens: tokens,
    stopTokens: [],
    topLogprobs: 0,
    // As the gateway asks when the client wants no logprobs (a softmax per step otherwise).
    logprobs: false,
  };
}

export async function timeStream(tier: Tier, request: GenerateRequest): Promise<StreamTiming> {
  const t0 = performance.now();
  let last = t0;
  let first: number | undefined;
  const gapsMs: number[] = [];
  let tokens = 0;
  for await (const e of tier.generate(request, new AbortController().signal)) {
    if (e.kind !== 'tokens') continue;
    const now = performance.now();
    // Tokens that arrive in one event share its arrival time.
    for (let i = 0; i < e.tokens.length; i++) {
      if (first === undefined) first = now;
      else gapsMs.push(now - last);
      last = now;
      tokens++;
    }
  }
  return { ttftMs: (first ?? last) - t0, gapsMs, tokens, totalMs: last - t0 };
}

/** p in [0, 100] by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Decode tokens/s of one stream after its first token: (n - 1) / (last - first). */
export function decodeTps(t: StreamTiming): number {
  const decodeMs = t.gapsMs.reduce((a, b) => a + b, 0);
  return decodeMs > 0 ? ((t.tokens - 1) * 1000) / decodeMs : 0;
}

/** Summary of several single-stream runs: best decode rate, median TTFT, pooled gap percentiles. */
export function summarise(timings: readonly StreamTiming[]): SingleStreamResult {
  const gaps = timings.flatMap((t) => t.gapsMs);
  return {
    decodeTps: Math.max(...timings.map(decodeTps)),
    ttftMs: percentile(
      timings.map((t) => t.ttftMs),
      50,
    ),
    itlP50Ms: percentile(gaps, 50),
    itlP99Ms: percentile(gaps, 99),
  };
}

/** Total tokens/s of `concurrency` simultaneous streams (wall clock from first start to last end). */
export async function aggregate(
  tier: Tier,
  prompts: readonly (readonly number[])[],
  tokens: number,
  concurrency: number,
): Promise<number> {
  const t0 = performance.now();
  const all = await Promise.all(
    Array.from({ length: concurrency }, (_, i) =>
      timeStream(tier, greedyRequest(prompts[i % prompts.length] as readonly number[], tokens)),
    ),
  );
  const wallMs = performance.now() - t0;
  return (all.reduce((n, t) => n + t.tokens, 0) * 1000) / wallMs;
}
