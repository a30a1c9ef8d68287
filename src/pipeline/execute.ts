import type { MetricsService } from '../observability/metrics.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { ChoiceDecoder, type ChoiceStats } from './generate-choice.js';
import type { GenerationSource, TierEventSink } from './source.js';
import type { ChoiceEvent, GenerationRequest } from './types.js';
import { Cancellation, type CancelSignal } from '../tiers/cancellation.js';

/** Totals over all choices of one request, for usage, the summary log and metrics. */
export interface ExecutionSummary {
  /** Set when the request ends (execute's finally); progressOf() reads it while it runs. */
  completionTokens: number;
  /** Milliseconds from arrival to the first token of any choice. */
  ttftMs: number | undefined;
  aborted: boolean;
  /** The choices' live counters and the request's arrival (set by execute when it starts). */
  live?: { readonly choices: readonly ChoiceStats[]; readonly arrivedAt: number } | undefined;
}

/**
 * Tokens generated so far and the TTFT, before or after the request ended: what a summary taken
 * early reads (the summary line of a stream whose client left, written while it stops).
 */
export function progressOf(summary: ExecutionSummary): {
  completionTokens: number;
  ttftMs: number | undefined;
} {
  const live = summary.live;
  if (live === undefined) return summary;
  let completionTokens = 0;
  let first: number | undefined;
  for (const s of live.choices) {
    completionTokens += s.completionTokens;
    if (s.firstTokenAt !== undefined) first = Math.min(first ?? Infinity, s.firstTokenAt);
  }
  return { completionTokens, ttftMs: first === undefined ? undefined : first - live.arrivedAt };
}

/**
 * The sink for one choice: decodes each tier event and hands the choice events on, in order;
 * 'stop' once the choice is done (a stop string ends the tier's stream at once).
 */
function decodeInto(decoder: ChoiceDecoder, onEvent: ChoiceEventHandler): TierEventSink {
  return (event) => {
    const flow = deliver(decoder.push(event), onEvent, 0);
    if (!decoder.done) return flow;
    return flow === undefined ? 'stop' : flow.then(() => 'stop' as const);
  };
}

/** Hands events on in order; when the handler must wait, the rest follow once it is done. */
function deliver(
  events: readonly ChoiceEvent[],
  onEvent: ChoiceEventHandler,
  from: number,
): void | Promise<void> {
  for (let i = from; i < events.length; i++) {
    const wait = onEvent(events[i]!);
    if (wait !== undefined)
      return i + 1 < events.length ? wait.then(() => deliver(events, onEvent, i + 1)) : wait;
  }
}

/**
 * n > 1 choices generate concurrently (llama.cpp batches them), their events interleaved as they
 * come. The first failure stops the other choices and is the request's error.
 */
async function runConcurrently(
  tier: GenerationSource,
  decoders: readonly ChoiceDecoder[],
  seedOf: (i: number) => number | undefined,
  signal: CancelSignal,
  onEvent: ChoiceEventHandler,
): Promise<void> {
  const group = new Cancellation();
  const onAbort = (): void => group.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let failed: { readonly err: unknown } | undefined;
  try {
    await Promise.all(
      decoders.map((d) =>
        tier
          .run(d.tierRequest(seedOf(d.index)), group.signal, decodeInto(d, onEvent))
          .catch((err: unknown) => {
            failed ??= { err };
            group.abort(err);
          }),
      ),
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failed !== undefined) throw failed.err;
}

/**
 * Receives a request's choice events in order. A handler that must wait (a client's socket is
 * full) returns a promise, and generation waits for it; throwing stops the request.
 */
export type ChoiceEventHandler = (event: ChoiceEvent) => void | Promise<void>;

/** How one request runs: its cancellation, live counters, consumer and delivery mode. */
export interface ExecuteOptions {
  readonly signal: CancelSignal;
  /** Filled in as the request runs and when it ends (usage, the summary line, metrics). */
  readonly summary: ExecutionSummary;
  readonly onEvent: ChoiceEventHandler;
  /**
   * False when the client reads the whole answer at once (no SSE): each choice's text comes as
   * one delta before its finish instead of one per token.
   */
  readonly streamed: boolean;
}

/**
 * Step 4 of a request's path (docs/architecture.md): runs its n choices on the source
 * (concurrently; llama.cpp batches them), hands each decoded event to `onEvent`, and records the
 * per-request token metrics when the request ends, however it ends. Resolves when every choice
 * finished. The latency models are taught by the Execution around it (src/service/), from the
 * parts each tier served.
 *
 * Events are pushed to a handler rather than pulled from generators: the tier's stream, iterated
 * by the source (the resilience executor), is the only async iteration of a request, and a
 * handler that does not wait costs no promise per event.
 */
export async function execute(
  tier: GenerationSource,
  deps: { readonly tokenizer: Tokenizer; readonly metrics: MetricsService },
  request: GenerationRequest,
  options: ExecuteOptions,
): Promise<void> {
  const { tokenizer, metrics } = deps;
  const { signal, summary, onEvent, streamed } = options;
  const series = metrics.tier(tier.name);
  const stats: ChoiceStats[] = [];
  summary.live = { choices: stats, arrivedAt: request.arrivedAt };
  const decoders: ChoiceDecoder[] = [];
  for (let i = 0; i < request.n; i++) {
    const s: ChoiceStats = { completionTokens: 0, firstTokenAt: undefined, lastTokenAt: undefined };
    stats.push(s);
    decoders.push(new ChoiceDecoder(tokenizer, request, i, s, streamed));
  }
  // Each choice gets its own seed so n > 1 gives different samples, reproducibly.
  const seed = request.sampling.seed;
  const seedOf = (i: number): number | undefined => (seed === undefined ? undefined : seed + i);
  const generating = metrics.generating;
  generating.set(tier.name, (generating.get(tier.name) ?? 0) + 1);
  series.inputTokens.inc(request.promptTokens.length * request.n);
  // 'abandoned': stopped early by cancellation (client gone, shutdown); 'failed' errors are
  // logged by whoever handles them.
  let outcome: 'completed' | 'failed' | 'abandoned' = 'abandoned';
  try {
    if (decoders.length === 1) {
      // One choice (the common case): decoded inside the source's own loop over the tier.
      const decoder = decoders[0]!;
      await tier.run(decoder.tierRequest(seedOf(0)), signal, decodeInto(decoder, onEvent));
    } else {
      await runConcurrently(tier, decoders, seedOf, signal, onEvent);
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
    for (const s of stats) {
      summary.completionTokens += s.completionTokens;
      if (s.firstTokenAt !== undefined) first = Math.min(first ?? Infinity, s.firstTokenAt);
      if (s.firstTokenAt !== undefined && s.lastTokenAt !== undefined && s.completionTokens > 1) {
        const perToken = (s.lastTokenAt - s.firstTokenAt) / (s.completionTokens - 1) / 1000;
        series.timePerOutputToken.observe(perToken);
      }
    }
    series.outputTokens.inc(summary.completionTokens);
    if (first !== undefined) {
      summary.ttftMs = first - request.arrivedAt;
      series.timeToFirstToken.observe(summary.ttftMs / 1000);
    }
  }
}
