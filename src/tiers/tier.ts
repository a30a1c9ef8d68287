/**
 * The Tier contract (docs/architecture.md "The Tier contract"): one inference framework serving
 * one model variant.
 * Tokens are the lingua franca: every tier receives and returns token ids of the model family's
 * tokenizer, so fallback and mid-stream continuation across frameworks are exact.
 * Text concerns (detokenisation, stop strings, chat templates) live in the gateway, not in tiers.
 */

import type { CancelSignal } from './cancellation.js';
import type { SamplingParams, TokenLogprob } from '../text/sampling-params.js';
import type { KeptSequence, OpenSequenceOptions } from './kept-sequence.js';

export type { SamplingParams, TokenLogprob } from '../text/sampling-params.js';

export type { CancelSignal } from './cancellation.js';

/** (The resilience executor copies these field by field for each attempt: add new fields there too.) */
export interface GenerateRequest {
  /** Prompt token ids, already tokenised by the gateway (BOS included when the model wants it). */
  readonly tokens: readonly number[];
  readonly sampling: SamplingParams;
  /** Upper bound on generated tokens; the tier finishes with reason 'length' when reached. */
  readonly maxTokens: number;
  /** Token ids that end generation (EOS and friends); the stop token itself is not emitted. */
  readonly stopTokens: readonly number[];
  /** How many alternative tokens to report per step with their logprobs (0 = none). */
  readonly topLogprobs: number;
  /**
   * Whether the caller reads each token's logprob. `false` lets a tier skip computing it and
   * report NaN (llama.cpp's per-token confidence adds a softmax over the vocabulary to every
   * step, a visible share of a token's time on the tiny model). Absent means true.
   */
  readonly logprobs?: boolean | undefined;
  /**
   * Absolute deadline (ms since epoch) of the request. The gateway's executor enforces it (it
   * aborts the signal); an in-process tier ignores it. A tier that crosses a process boundary
   * (remote) sends it as its call's deadline, so the other side stops too.
   */
  readonly deadline?: number | undefined;
  /** Request id for logs and tracing across processes. */
  readonly requestId?: string | undefined;
}

/**
 * One or more generated tokens, in order. A tier that produces a token per step (llama.cpp,
 * ONNX, the sidecar) sends one per event; one that has several ready at once (the echo tier, a
 * batched stream) sends them together: every layer between the tier and the client (executor,
 * choice generator) then runs once per event instead of once per token.
 *
 * The arrays are the consumer's once yielded: a tier must not change them afterwards (the
 * executor keeps them, uncopied, to continue on another tier if this one fails).
 */
export interface TokenEvent {
  readonly kind: 'tokens';
  readonly tokens: readonly number[];
  /**
   * Natural-log probability of each token under the tier's (pre-sampling-transform)
   * distribution, `logprobs[i]` for `tokens[i]`; NaN when the request said `logprobs: false`
   * and the tier skipped it.
   */
  readonly logprobs: readonly number[];
  /** Present when topLogprobs > 0: for each token, the most likely alternatives, best first. */
  readonly top?: readonly (readonly TokenLogprob[])[] | undefined;
}

/** The event for a single token (tiers that generate one token per step). */
export function tokenEvent(
  token: number,
  logprob: number,
  top?: readonly TokenLogprob[] | undefined,
): TokenEvent {
  return { kind: 'tokens', tokens: [token], logprobs: [logprob], top: top === undefined ? undefined : [top] };
}

/**
 * The first `count` tokens of an event (a stop string, a token limit or an injected fault ends
 * a stream inside a batch).
 */
export function firstTokens(event: TokenEvent, count: number): TokenEvent {
  if (count >= event.tokens.length) return event;
  return {
    kind: 'tokens',
    tokens: event.tokens.slice(0, count),
    logprobs: event.logprobs.slice(0, count),
    top: event.top?.slice(0, count),
  };
}

/** 'stop': a stop token was produced; 'length': maxTokens reached or the context is full. */
export type TierFinishReason = 'stop' | 'length';

export interface FinishEvent {
  readonly kind: 'finish';
  readonly reason: TierFinishReason;
}

export type TierEvent = TokenEvent | FinishEvent;

export type TierFramework = 'llama.cpp' | 'onnxruntime' | 'pytorch' | 'tensorflow' | 'echo';

export interface TierInfo {
  /** The tier's name in config (e.g. "edge", "main", "fallback"). */
  readonly name: string;
  readonly framework: TierFramework;
  /** Model family id, e.g. "tiny-brown". */
  readonly modelId: string;
  /** Variant id within the family, e.g. "gguf-q4_k_m", "onnx-int8". */
  readonly variant: string;
  /** "fp32", "int8", "q4_k_m", … */
  readonly precision: string;
  readonly contextLength: number;
  readonly vocabSize: number;
  /**
   * Requests the tier runs at once (llama.cpp sequences, ONNX batch slots, a remote server's
   * concurrency); absent: no limit worth planning for (the echo tier). The router's queue-wait
   * model divides by it, and admission's default limit is it (docs/architecture.md "Capacity").
   */
  readonly capacity?: number | undefined;
  /**
   * Requests the tier lets wait beyond its capacity (its `maxQueue` option); absent: admission's
   * own default. The queue itself is admission's (src/resilience/admission.ts).
   */
  readonly maxQueue?: number | undefined;
  /**
   * Aggregate decode rate of `capacity` concurrent streams ÷ one stream's: how many streams' worth
   * of work the tier does at once. 1 means concurrent streams share the tier's compute one after
   * another (llama.cpp on a CPU: `npm run bench:edge-batching`, docs/routing.md "Queue model");
   * absent means every stream runs at full speed up to `capacity`. The router's queue model plans
   * with it; admission still lets `capacity` run.
   */
  readonly batchSpeedup?: number | undefined;
}

export interface TierHealth {
  readonly ready: boolean;
  /** Why the tier is not ready (or extra detail when it is). */
  readonly detail?: string | undefined;
}

export interface Tier {
  readonly name: string;
  /** Loads models / connects; resolves when the tier can serve. Throws a typed error otherwise. */
  start(): Promise<void>;
  /**
   * Generates tokens for one sequence. The stream ends with exactly one FinishEvent unless it
   * throws. Aborting `signal` stops generation promptly and frees the tier's resources; the
   * iterator then ends by throwing the signal's reason.
   */
  generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent>;
  /**
   * Log-probabilities of tokens[i] given tokens[0..i-1] for i = 1..n-1 (length n-1):
   * perplexity eval, cascade confidence, speculative verification.
   */
  score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array>;
  info(): TierInfo;
  health(): TierHealth;
  /**
   * Optional: a sequence kept on the tier for speculative decoding (src/tiers/kept-sequence.ts).
   * A tier without it is never a drafter or verifier.
   */
  openSequence?(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence>;
  /** Stops serving and frees models, workers and connections. */
  close(): Promise<void>;
}
