import type { LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { createRng } from '../../text/sampling.js';
import { verifyPosition, type VerifyPosition } from '../../text/speculative-sampling.js';
import type { CancelSignal } from '../cancellation.js';
import { TierUnavailableError } from '../errors.js';
import type {
  DraftResult,
  KeptSequence,
  OpenSequenceOptions,
  SequenceEdit,
  VerifyOptions,
  VerifyResult,
} from '../kept-sequence.js';
import { topOf } from './top-tokens.js';

/** What the kept sequence borrows from its tier: the pool's release and the evaluation count. */
export interface KeptSequenceHost {
  readonly tier: string;
  readonly model: LlamaModel;
  /** Returns the sequence to the tier's pool (which clears its cache). */
  release(seq: LlamaContextSequence): Promise<void>;
  /** Counts an evaluation (each holds a native sampler) for the tier's native reclaim. */
  evaluationStarted(): void;
  evaluationEnded(): void;
  /**
   * Runs one native call under the tier's liveness rule (step-watch.ts): `result` settles as the
   * call does, or rejects with the tier's stall error once the call passes its limit; `native`
   * is the call itself, which a stalled call's sequence must wait for before going back to the
   * pool. `promptTokens`: the tokens the call feeds (its expected time grows with them).
   */
  watched<T>(promptTokens: number, call: () => Promise<T>): { native: Promise<T>; result: Promise<T> };
}

/**
 * A kept sequence on a llama.cpp tier (src/tiers/kept-sequence.ts, docs/speculative.md): one of
 * the context's pooled sequences, held until closed. Rolling back is erasing the cache's tail
 * (`eraseContextTokenRanges`). Drafting is llama.cpp's own greedy loop (`evaluate` at temperature
 * 0), which leaves the last drafted token unevaluated (`held` says so). Verifying feeds append +
 * draft through one `controlledEvaluate` call (one batch) and reads each draft position:
 *
 * - greedy: llama.cpp's own sampler at temperature 0 picks the token and gives its confidence,
 *   exactly what plain decoding on this tier reads (llamacpp-tier.ts `generate`), so a greedy
 *   speculative answer carries the same tokens and log-probabilities;
 * - sampling: the raw logits of each position go through verifyPosition
 *   (src/text/speculative-sampling.ts), the acceptance rule's inputs.
 */
export class LlamaKeptSequence implements KeptSequence {
  private closed = false;
  private running: Promise<unknown> | undefined;
  /** The latest native call: a stalled one outlives the call that gave up on it. */
  private native: Promise<unknown> = Promise.resolve();
  private readonly stops: ReadonlySet<number>;
  private readonly onAbort = (): void => this.close();

  constructor(
    private readonly host: KeptSequenceHost,
    private readonly seq: LlamaContextSequence,
    /** Logits rows are this long (the family tokenizer's vocabulary). */
    private readonly vocab: number,
    options: OpenSequenceOptions,
    private readonly signal: CancelSignal,
  ) {
    this.stops = new Set(options.stopTokens);
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Tokens the cache holds now. */
  get held(): number {
    return this.seq.nextTokenIndex;
  }

  draft(edit: SequenceEdit, k: number): Promise<DraftResult> {
    return this.exclusive(async () => {
      const append = await this.edit(edit);
      // Room for the drafts: llama.cpp would otherwise shift the context (drop its start).
      const room = this.seq.contextSize - this.seq.nextTokenIndex - append.length;
      const limit = Math.max(0, Math.min(k, room));
      const tokens: number[] = [];
      this.host.evaluationStarted();
      try {
        if (limit === 0) {
          await this.watched(append.length, () =>
            this.seq.evaluateWithoutGeneratingNewTokens(append as Token[]),
          );
        } else {
          const stream = this.seq.evaluate(append as Token[], { temperature: 0, yieldEogToken: true });
          const steps = stream[Symbol.asyncIterator]();
          // Each step watched; returning the iterator ends the evaluation, so the last drafted
          // token stays unevaluated. After a stall it ends once the stuck step has returned.
          let fed = append.length;
          let failed = false;
          try {
            for (;;) {
              const step = await this.watched(fed, () => steps.next());
              fed = 0;
              if (step.done === true) break;
              const token = step.value;
              if (this.closed) break;
              tokens.push(token as number);
              if (tokens.length >= limit || this.stops.has(token) || this.host.model.isEogToken(token)) break;
            }
          } catch (err) {
            failed = true;
            throw err;
          } finally {
            if (!failed) await steps.return?.();
            else {
              const end = (): unknown => steps.return?.();
              this.native = this.native.then(end, end);
            }
          }
        }
      } finally {
        this.host.evaluationEnded();
      }
      this.throwIfClosed();
      return { tokens, held: this.seq.nextTokenIndex };
    });
  }

  verify(edit: SequenceEdit, draft: readonly number[], options: VerifyOptions): Promise<VerifyResult> {
    return this.exclusive(async () => {
      const append = await this.edit(edit);
      if (this.seq.nextTokenIndex + append.length + draft.length > this.seq.contextSize)
        throw new TierUnavailableError(
          this.host.tier,
          `tier "${this.host.tier}": the draft does not fit the context`,
        );
      const greedy = !(options.sampling.temperature > 0);
      const top = options.topLogprobs;
      // The same metadata plain decoding asks for (llamacpp-tier.ts `generate`).
      const next = greedy
        ? {
            token: true,
            confidence: options.logprobs || top > 0,
            probabilities: top > 0,
            options: { temperature: 0 },
          }
        : { logits: true };
      const fed = append.length === 0 ? draft : [...append, ...draft];
      const first = append.length - 1;
      const input = fed.map((t, i) =>
        i >= first ? ([t as Token, { generateNext: next }] as const) : (t as Token),
      );
      this.host.evaluationStarted();
      let results: Awaited<ReturnType<LlamaContextSequence['controlledEvaluate']>>;
      try {
        results = await this.watched(fed.length, () =>
          this.seq.controlledEvaluate(input as Parameters<LlamaContextSequence['controlledEvaluate']>[0]),
        );
      } finally {
        this.host.evaluationEnded();
      }
      this.throwIfClosed();
      const rng = createRng(options.seed);
      const positions: VerifyPosition[] = [];
      for (let i = 0; i <= draft.length; i++) {
        const out = results[first + i]?.next;
        if (out === undefined) throw new Error(`llama.cpp returned nothing for draft position ${i}`);
        positions.push(
          greedy ? greedyPosition(out, draft[i], options) : this.sampled(out.logits, draft[i], options, rng),
        );
      }
      return { positions, held: this.seq.nextTokenIndex };
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener('abort', this.onAbort);
    // A call in flight stops at its next token; the sequence goes back to the pool after it, and
    // after a native call the liveness rule gave up on, once that returns.
    const release = (): Promise<void> => this.host.release(this.seq);
    void Promise.allSettled([this.running, this.native]).then(release);
  }

  private sampled(
    logits: ReadonlyMap<Token, number> | undefined,
    draft: number | undefined,
    options: VerifyOptions,
    rng: ReturnType<typeof createRng>,
  ): VerifyPosition {
    if (logits === undefined) throw new Error('llama.cpp returned no logits for a draft position');
    const row = new Float32Array(this.vocab).fill(-Infinity);
    for (const [token, value] of logits) row[token] = value;
    return verifyPosition(row, draft, options, rng);
  }

  /** Keeps the first `keep` cached tokens and returns what is left to evaluate. */
  private async edit(edit: SequenceEdit): Promise<readonly number[]> {
    const held = this.seq.nextTokenIndex;
    // A position's prediction needs its token fed in this call: an edit always appends.
    if (edit.append.length === 0 || edit.keep > held || edit.keep < 0)
      throw new Error(`bad sequence edit: keep ${edit.keep} of ${held}, append ${edit.append.length}`);
    if (edit.keep < held) await this.seq.eraseContextTokenRanges([{ start: edit.keep, end: held }]);
    return edit.append;
  }

  private watched<T>(promptTokens: number, call: () => Promise<T>): Promise<T> {
    const { native, result } = this.host.watched(promptTokens, call);
    this.native = native;
    return result;
  }

  private async exclusive<T>(call: () => Promise<T>): Promise<T> {
    this.throwIfClosed();
    if (this.running !== undefined) throw new Error('kept sequence calls must not overlap');
    const run = call();
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  private throwIfClosed(): void {
    if (!this.closed) return;
    if (this.signal.aborted) throw this.signal.reason;
    throw new TierUnavailableError(this.host.tier, `tier "${this.host.tier}": the kept sequence was closed`);
  }
}

interface GreedyOutput {
  readonly token?: Token | null;
  readonly confidence?: number;
  readonly probabilities?: ReadonlyMap<Token, number>;
}

/** A greedy position from llama.cpp's own sampler: accepted exactly when it picked the draft token. */
function greedyPosition(
  out: GreedyOutput,
  draft: number | undefined,
  options: VerifyOptions,
): VerifyPosition {
  const token = out.token;
  if (token === undefined || token === null)
    throw new Error('llama.cpp sampled no token for a draft position');
  const logprob = options.logprobs && out.confidence !== undefined ? Math.log(out.confidence) : Number.NaN;
  const accept = draft !== undefined && (token as number) === draft ? 1 : 0;
  return {
    accept,
    token: token as number,
    tokenLogprob: logprob,
    // Only read when the draft token was accepted, i.e. when it is `token`.
    draftLogprob: accept === 1 ? logprob : Number.NaN,
    top:
      options.topLogprobs > 0 && out.probabilities !== undefined
        ? topOf(out.probabilities, options.topLogprobs)
        : undefined,
  };
}
