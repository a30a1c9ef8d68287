import type { MetricsService } from '../observability/metrics.js';
import type { LatencyObservation } from '../routing/latency-model.js';
import type { Tokenizer } from '../text/tokenizer.js';
import {
  ChoiceDecoder,
  choiceEvents,
  unfinished,
  type ChoiceStats,
  type GenerationSource,
} from './generate-choice.js';
import { merge } from './merge.js';
import type { ChoiceEvent, GenerationRequest } from './types.js';
import { type CancelSignal } from '../tiers/cancellation.js';

/** Totals over all choices of one request, for usage, the summary log and metrics. */
export interface ExecutionSummary {
  completionTokens: number;
  /** Milliseconds from arrival to the first token of any choice. */
  ttftMs: number | undefined;
  aborted: boolean;
}

/**
 * Receives a request's choice events in order. A handler that must wait (a client's socket is
 * full) returns a promise, and generation waits for it; throwing stops the request.
 */
export type ChoiceEventHandler = (event: ChoiceEvent) => void | Promise<void>;

/**
 * Step 4 of DESIGN.md for one request: runs its n choices on the tier (concurrently; llama.cpp
 * batches them), hands each decoded event to `onEvent`, and records the per-request metrics when
 * the request ends, however it ends. Resolves when every choice finished.
 *
 * Events are pushed to a handler rather than pulled from a generator: the tier's stream is the
 * only async iteration per request, and a handler that does not wait costs no promise per event.
 */
export async function execute(
  tier: GenerationSource,
  tokenizer: Tokenizer,
  metrics: MetricsService,
  request: GenerationRequest,
  signal: CancelSignal,
  summary: ExecutionSummary,
  onEvent: ChoiceEventHandler,
  /** Called once when the request completed with a first token: feeds the router's latency model. */
  observe?: (observation: LatencyObservation) => void,
  /**
   * False when the client reads the whole answer at once (no SSE): each choice's text comes as
   * one delta before its finish instead of one per token.
   */
  streamed = true,
): Promise<void> {
  const series = metrics.tier(tier.name);
  const stats: ChoiceStats[] = [];
  const decoders = Array.from({ length: request.n }, (_, i) => {
    const s: ChoiceStats = { completionTokens: 0, firstTokenAt: undefined, lastTokenAt: undefined };
    stats.push(s);
    return new ChoiceDecoder(tokenizer, request, i, s, streamed);
  });
  // Each choice gets its own seed so n > 1 gives different samples, reproducibly.
  const seedOf = (i: number): number | undefined =>
    request.sampling.seed === undefined ? undefined : request.sampling.seed + i;
  const generating = metrics.generating;
  generating.set(tier.name, (generating.get(tier.name) ?? 0) + 1);
  series.inputTokens.inc(request.promptTokens.length * request.n);
  // 'abandoned': stopped early by cancellation (client gone, shutdown); 'failed' errors are
  // logged by whoever handles them.
  let outcome: 'completed' | 'failed' | 'abandoned' = 'abandoned';
  try {
    if (decoders.length === 1) {
      // One choice (the common case): the tier's events are decoded here, with no generator
      // per choice and no interleaving between this loop and the tier.
      const decoder = decoders[0]!;
      for await (const event of tier.generate(decoder.tierRequest(seedOf(0)), signal)) {
        for (const e of decoder.push(event)) {
          const wait = onEvent(e);
          if (wait !== undefined) await wait;
        }
        // Leaving the loop closes the tier's stream (stop string found): its slot is freed.
        if (decoder.done) break;
      }
      if (!decoder.done) throw unfinished(tier.name);
    } else {
      for await (const e of merge(decoders.map((d) => choiceEvents(tier, d, seedOf(d.index), signal)))) {
        const wait = onEvent(e);
        if (wait !== undefined) await wait;
      }
    }
    outcome = 'completed';
  } catch (err) {
    outcome = signal.aborted ? 'abandoned' : 'failed';
    throw err;
  } finally {
    generating.set(tier.name, (generating.get(tier.name) ?? 1) - 1);
    summary.aborted = outcome === 'abandoned';
    if (summary.aborted) series.aborted.inc();
    let first: number | undefined;
    let perTokenSum = 0;
    let perTokenCount = 0;
    for (const s of stats) {
      summary.completionTokens += s.completionTokens;
      if (s.firstTokenAt !== undefined) first = Math.min(first ?? Infinity, s.firstTokenAt);
      if (s.firstTokenAt !== undefined && s.lastTokenAt !== undefined && s.completionTokens > 1) {
        const perToken = (s.lastTokenAt - s.firstTokenAt) / (s.completionTokens - 1) / 1000;
        series.timePerOutputToken.observe(perToken);
        perTokenSum += perToken * 1000;
        perTokenCount++;
      }
    }
    series.outputTokens.inc(summary.completionTokens);
    if (first !== undefined) {
      summary.ttftMs = first - request.arrivedAt;
      series.timeToFirstToken.observe(summary.ttftMs / 1000);
      // Only completed requests teach the latency model: an aborted one says little about the tier.
      if (outcome === 'completed') {
        observe?.({
          promptTokens: request.promptTokens.length,
          ttftMs: summary.ttftMs,
          perTokenMs: perTokenCount > 0 ? perTokenSum / perTokenCount : undefined,
        });
      }
    }
  }
}
