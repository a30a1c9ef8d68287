/**
 * The kept-sequence capability of the Tier contract (optional, `Tier.openSequence`): one sequence
 * whose KV cache stays on the tier between calls, driven step by step by an execution strategy —
 * speculative decoding across tiers (docs/routing.md "Speculative decoding"). A drafter proposes
 * tokens on its cached sequence; a verifier scores a whole draft in one forward pass on its own.
 *
 * Every call first edits the cache: it keeps the first `keep` tokens it holds (rolling back what
 * a rejected draft left there) and appends `append`. So the caller never re-sends the prompt, and
 * each side only ever evaluates tokens it has not seen.
 */
import type { CancelSignal } from './cancellation.js';
import type { SamplingParams } from '../text/sampling-params.js';
import type { VerifyPosition } from '../text/speculative-sampling.js';

export type { VerifyPosition } from '../text/speculative-sampling.js';

/** How the cached sequence changes before a call: its first `keep` tokens, then `append`. */
export interface SequenceEdit {
  /** At most the tokens the cache holds (`held` of the previous call; 0 at first). */
  readonly keep: number;
  readonly append: readonly number[];
}

/** What a sequence is opened with: the same for every call on it. */
export interface OpenSequenceOptions {
  /** Token ids that end generation: a drafter stops drafting after proposing one. */
  readonly stopTokens: readonly number[];
  /** Absolute deadline (ms since the epoch); a tier across a process boundary sends it on. */
  readonly deadline?: number | undefined;
  readonly requestId?: string | undefined;
}

export interface DraftResult {
  /** Up to k greedy tokens; fewer when a stop token was drafted or the context is full. */
  readonly tokens: readonly number[];
  /** Tokens the cache holds now: a prefix of keep + append + tokens. */
  readonly held: number;
}

/** How the verifier samples: exactly as that tier samples in plain decoding. */
export interface VerifyOptions {
  readonly sampling: SamplingParams;
  /** Seeds this call's residual and bonus samples (unused when greedy). */
  readonly seed: number;
  /** Alternatives to report per position (0 = none). */
  readonly topLogprobs: number;
  /** False: the tier may skip the raw log-probabilities (reported NaN). */
  readonly logprobs: boolean;
}

export interface VerifyResult {
  /** draft.length + 1 positions: one per draft token, then the bonus position. */
  readonly positions: readonly VerifyPosition[];
  /** Tokens the cache holds now: keep + append + draft (all of it was fed). */
  readonly held: number;
}

/**
 * One sequence kept on a tier. Calls run one at a time (a caller awaits each). Aborting the
 * signal it was opened with, or `close()`, frees the tier's sequence; a call then in flight
 * rejects with the signal's reason (or a tier error).
 */
export interface KeptSequence {
  /** Edits the cache, then proposes up to `k` tokens greedily. */
  draft(edit: SequenceEdit, k: number): Promise<DraftResult>;
  /**
   * Edits the cache, then feeds `draft` in the same forward pass as `append`, and reports each
   * draft position plus the bonus position (VerifyPosition, src/text/speculative-sampling.ts).
   */
  verify(edit: SequenceEdit, draft: readonly number[], options: VerifyOptions): Promise<VerifyResult>;
  /** Frees the tier's sequence; safe to call more than once. */
  close(): void;
}

/** The optional part of the Tier contract a tier implements to take part in speculation. */
export interface SequenceKeeper {
  /**
   * Opens a kept sequence, holding one of the tier's sequences (its capacity) until closed.
   * Rejects like `generate` would: unavailable, overloaded, or the signal's reason.
   */
  openSequence(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence>;
}
