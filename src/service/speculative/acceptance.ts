/**
 * The speculative sampling acceptance rule (Leviathan et al., 2023; Chen et al., 2023), the one
 * place it lives (docs/speculative.md). The verifier reports, per draft
 * position, the chance of accepting the draft token and the token to emit instead
 * (src/text/speculative-sampling.ts); this walks the draft left to right, accepting while a
 * uniform draw falls below that chance, and ends with the verifier's token at the first
 * rejection, or its bonus token after the last draft token. Greedy positions report a chance of
 * 0 or 1, so greedy output is the verifier's own, token for token.
 */
import type { TokenLogprob } from '../../text/sampling-params.js';
import type { VerifyPosition } from '../../text/speculative-sampling.js';

/** What one verify step emits: the accepted draft prefix, then one token of the verifier's. */
export interface AcceptedRun {
  /** Draft tokens accepted (0 … draft.length). */
  readonly accepted: number;
  /** accepted + 1 tokens, with the verifier's log-probabilities (and alternatives when asked). */
  readonly tokens: number[];
  readonly logprobs: number[];
  readonly top: (readonly TokenLogprob[])[] | undefined;
}

/**
 * Applies the rule to one verified draft: `positions` has draft.length + 1 entries, `uniform`
 * draws from [0, 1) (drawn only where the chance is strictly between 0 and 1).
 */
export function acceptDraft(
  draft: readonly number[],
  positions: readonly VerifyPosition[],
  uniform: () => number,
): AcceptedRun {
  if (positions.length !== draft.length + 1) {
    throw new Error(`verifier returned ${positions.length} positions for a draft of ${draft.length}`);
  }
  const tokens: number[] = [];
  const logprobs: number[] = [];
  const withTop = positions[0]!.top !== undefined;
  const top: (readonly TokenLogprob[])[] | undefined = withTop ? [] : undefined;
  let i = 0;
  for (; i < draft.length; i++) {
    const p = positions[i]!;
    const take = p.accept >= 1 || (p.accept > 0 && uniform() < p.accept);
    if (!take) break;
    tokens.push(draft[i]!);
    logprobs.push(p.draftLogprob);
    top?.push(p.top ?? []);
  }
  const last = positions[i]!;
  tokens.push(last.token);
  logprobs.push(last.tokenLogprob);
  top?.push(last.top ?? []);
  return { accepted: i, tokens, logprobs, top };
}
