import { ResilienceError } from '../../resilience/errors.js';
import type { DraftResult, KeptSequence, SequenceEdit, VerifyOptions } from '../../tiers/kept-sequence.js';
import { acceptDraft, type AcceptedRun } from './acceptance.js';

/** A failure of one side of the pair: the strategy continues without it (speculative-source.ts). */
export class SideFailure extends Error {
  constructor(
    readonly side: 'draft' | 'verify',
    readonly error: unknown,
  ) {
    super(`${side} tier failed: ${error instanceof Error ? error.message : String(error)}`);
    this.name = 'SideFailure';
  }
}

/**
 * What one side's cache holds, as fed by this session. The edit that brings it to the committed
 * tokens keeps the longest common prefix and appends the rest, never nothing: the last committed
 * token is what the next prediction is read from (src/tiers/kept-sequence.ts, SequenceEdit).
 * After a rejected draft the common prefix ends before the first rejected token, which is how
 * both caches roll back.
 */
export class Mirror {
  private tokens: readonly number[] = [];

  edit(committed: readonly number[]): SequenceEdit {
    const max = Math.min(this.tokens.length, committed.length - 1);
    let keep = 0;
    while (keep < max && this.tokens[keep] === committed[keep]) keep++;
    return { keep, append: committed.slice(keep) };
  }

  /** After a call that fed `committed` then `extra`: the cache holds the first `held` of them. */
  fed(committed: readonly number[], extra: readonly number[], held: number): void {
    this.tokens = (extra.length === 0 ? committed : committed.concat(extra)).slice(0, held);
  }
}

/** One step's outcome and costs (for the pair's statistics). */
export interface Step {
  readonly run: AcceptedRun;
  readonly drafted: number;
  readonly draftMs: number;
  readonly verifyMs: number;
}

/**
 * The two kept sequences of one choice (docs/speculative.md): each step drafts up to k tokens on
 * the draft tier, verifies them on the verify tier in one pass, and applies the acceptance rule
 * (acceptance.ts). A side that fails is reported as a SideFailure.
 */
export class SpeculativeSession {
  private readonly drafter = new Mirror();
  private readonly verifier = new Mirror();
  /** Steps whose draft was the lookahead block (tests, docs/speculative.md). */
  lookaheadUsed = 0;
  /** A draft started while the verifier checked the last one (lookahead), from `base`. */
  private ahead:
    { readonly base: readonly number[]; readonly tokens: Promise<readonly number[]> } | undefined;

  constructor(
    private readonly verifySeq: KeptSequence,
    private readonly draftSeq: KeptSequence,
    /** The draft tier's name, for the error of a draft call that outlasts its limit. */
    private readonly draftTier = 'draft',
  ) {}

  /** Frees both tiers' sequences. */
  close(): void {
    this.draftSeq.close();
    this.verifySeq.close();
  }

  /**
   * Drafts up to k tokens after `committed` (none when k is 0), verifies them and applies the
   * rule. A draft call that takes longer than `draftLimitMs` (0: no limit) fails the draft side:
   * a hung drafter must not hold an answer the verify tier can finish alone.
   *
   * With `lookahead`, while the verifier checks this draft the drafter already drafts the next
   * block from the end of it, as if all of it were accepted. When it was, and the verifier's own
   * next token is the one the drafter guessed, the next step starts with that block at once;
   * otherwise it is dropped (the drafter's cache rolls back on the next edit). The verifier alone
   * decides what is emitted, so the answer is the same either way; only the time differs.
   */
  async step(
    committed: readonly number[],
    k: number,
    options: VerifyOptions,
    uniform: () => number,
    draftLimitMs = 0,
    lookahead = false,
  ): Promise<Step> {
    const t0 = performance.now();
    const draft = k > 0 ? await this.nextDraft(committed, k, draftLimitMs) : [];
    const t1 = performance.now();
    if (lookahead && draft.length === k)
      this.ahead = this.startAhead(committed.concat(draft), k, draftLimitMs);
    let positions;
    try {
      const result = await this.verifySeq.verify(this.verifier.edit(committed), draft, options);
      this.verifier.fed(committed, draft, result.held);
      positions = result.positions;
    } catch (err) {
      throw new SideFailure('verify', err);
    }
    const t2 = performance.now();
    return {
      run: acceptDraft(draft, positions, uniform),
      drafted: draft.length,
      draftMs: t1 - t0,
      verifyMs: t2 - t1,
    };
  }

  /** The lookahead block when it still applies after `committed`, else a new draft. */
  private async nextDraft(
    committed: readonly number[],
    k: number,
    limitMs: number,
  ): Promise<readonly number[]> {
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead !== undefined) {
      // Awaited even when it no longer applies: calls on the drafter's sequence never overlap.
      let tokens: readonly number[];
      try {
        tokens = await ahead.tokens;
      } catch (err) {
        throw new SideFailure('draft', err);
      }
      const n = ahead.base.length;
      // Applies when the whole draft was accepted and the verifier's next token is the first one guessed.
      if (
        committed.length === n + 1 &&
        tokens.length > 1 &&
        tokens[0] === committed[n] &&
        extends_(committed, ahead.base)
      ) {
        this.lookaheadUsed++;
        return tokens.slice(1, 1 + k);
      }
    }
    return this.draft(committed, k, limitMs);
  }

  /** Drafts k + 1 tokens after `base` (the guess of the verifier's next token, then a block of k). */
  private startAhead(
    base: readonly number[],
    k: number,
    limitMs: number,
  ): { readonly base: readonly number[]; readonly tokens: Promise<readonly number[]> } {
    const call = this.draftSeq.draft(this.drafter.edit(base), k + 1);
    const tokens = (limitMs > 0 ? within(call, limitMs, this.draftTier) : call).then((r) => {
      this.drafter.fed(base, r.tokens, r.held);
      return r.tokens;
    });
    // Left unawaited when the session ends first.
    tokens.catch(() => undefined);
    return { base, tokens };
  }

  private async draft(committed: readonly number[], k: number, limitMs: number): Promise<readonly number[]> {
    try {
      const call = this.draftSeq.draft(this.drafter.edit(committed), k);
      const result = limitMs > 0 ? await within(call, limitMs, this.draftTier) : await call;
      this.drafter.fed(committed, result.tokens, result.held);
      return result.tokens;
    } catch (err) {
      throw new SideFailure('draft', err);
    }
  }
}

/** Whether `long` starts with `prefix` (compared from the end, where they differ if at all). */
function extends_(long: readonly number[], prefix: readonly number[]): boolean {
  for (let i = prefix.length - 1; i >= 0; i--) if (long[i] !== prefix[i]) return false;
  return true;
}

/** The call's result, or a timeout error after `ms` (the call itself is left to end on close). */
function within(call: Promise<DraftResult>, ms: number, tier: string): Promise<DraftResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ResilienceError(
            'TIERGATE_ERR_ATTEMPT_TIMEOUT',
            `a draft call on tier "${tier}" took longer than ${Math.round(ms)} ms`,
            tier,
          ),
        ),
      ms,
    );
  });
  // The abandoned call rejects when its sequence is closed: nobody waits for it then.
  call.catch(() => undefined);
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
