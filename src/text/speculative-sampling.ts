/**
 * The verifier's side of speculative sampling (docs/routing.md "Speculative decoding"): what one
 * position of a draft needs for the acceptance rule, computed from the verifier's logits with the
 * same transforms as plain sampling (src/text/sampling.ts). The rule itself runs in the gateway
 * (src/service/speculative/acceptance.ts); the PyTorch sidecar has the same function in Python
 * (sidecar/tiergate_sidecar/sampling.py `verify_position`).
 *
 * The draft is greedy, so the drafter's distribution q is one-hot on the draft token d. The
 * Leviathan/Chen rule accepts d with probability min(1, p(d)/q(d)) = p(d), and on rejection
 * samples normalise(max(0, p − q)) = p with d removed, renormalised: the emitted token is then
 * distributed exactly as p, whatever the drafter proposed.
 */
import { argmax, candidates, logSumExp, topEntries, type Rng } from './sampling.js';
import type { SamplingParams, TokenLogprob } from './sampling-params.js';

/**
 * What the acceptance rule (src/service/speculative/acceptance.ts) needs at one position of a
 * verified draft, under the verifier's distribution p after the last accepted token.
 */
export interface VerifyPosition {
  /**
   * The chance of accepting the draft token here: its probability under the verifier's
   * sampling-transformed distribution (temperature, top-k, top-p); greedy: 1 when it is the
   * argmax, else 0. 0 at the bonus position (after the last draft token).
   */
  readonly accept: number;
  /**
   * The token emitted when the draft token is rejected here: greedy, the argmax; sampling, a
   * sample of p with the draft token removed and renormalised (the residual max(0, p − q) for a
   * greedy draft q). At the bonus position: the verifier's own next token, sampled from p.
   */
  readonly token: number;
  /** Untransformed natural-log probability of `token` (NaN when logprobs were not asked for). */
  readonly tokenLogprob: number;
  /** The same for the draft token at this position (NaN at the bonus position). */
  readonly draftLogprob: number;
  /** The most likely tokens of the untransformed distribution, best first (topLogprobs > 0). */
  readonly top?: readonly TokenLogprob[] | undefined;
}

export interface PositionOptions {
  readonly sampling: SamplingParams;
  readonly topLogprobs: number;
  /** False: skip the raw log-probabilities (NaN), as plain decoding does. */
  readonly logprobs: boolean;
}

/**
 * A verified position from one row of logits. `draft` is the draft token at this position, or
 * undefined at the bonus position. `rng` draws one number when sampling, none when greedy.
 */
export function verifyPosition(
  logits: ArrayLike<number>,
  draft: number | undefined,
  options: PositionOptions,
  rng: Rng,
): VerifyPosition {
  const { sampling, topLogprobs } = options;
  let accept = 0;
  let token: number;
  if (!(sampling.temperature > 0)) {
    token = argmax(logits);
    accept = draft !== undefined && token === draft ? 1 : 0;
  } else {
    const { ids, weights } = transformed(logits, sampling);
    let total = 0;
    let draftWeight = 0;
    for (let i = 0; i < ids.length; i++) {
      total += weights[i]!;
      if (ids[i] === draft) draftWeight = weights[i]!;
    }
    accept = draftWeight / total;
    token = sampleExcluding(ids, weights, total - draftWeight, draft, rng);
  }
  const want = options.logprobs || topLogprobs > 0;
  const lse = want ? logSumExp(logits) : 0;
  return {
    accept,
    token,
    tokenLogprob: options.logprobs ? (logits[token] as number) - lse : Number.NaN,
    draftLogprob: options.logprobs && draft !== undefined ? (logits[draft] as number) - lse : Number.NaN,
    top:
      topLogprobs > 0
        ? topEntries(logits, topLogprobs).map((e) => ({ token: e.token, logprob: e.logprob - lse }))
        : undefined,
  };
}

/**
 * Candidates and their weights after temperature, top-k and top-p. Without top-k and top-p every
 * token is a candidate in index order: the same distribution as `candidates` without its sort of
 * the vocabulary, which would cost more per position than the forward pass of a small model.
 */
function transformed(
  logits: ArrayLike<number>,
  sampling: SamplingParams,
): { ids: ArrayLike<number>; weights: ArrayLike<number> } {
  if (sampling.topK > 0 || sampling.topP < 1) return candidates(logits, sampling);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i] as number);
  const weights = new Float64Array(n);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    ids[i] = i;
    weights[i] = Math.exp(((logits[i] as number) - max) / sampling.temperature);
  }
  return { ids, weights };
}

/**
 * A sample of the candidates with `excluded` left out (its weight already taken from `total`);
 * with nothing left (the excluded token held all the mass, so it is always accepted) the
 * excluded token itself. A number is drawn either way, so each position costs one draw.
 */
function sampleExcluding(
  ids: ArrayLike<number>,
  weights: ArrayLike<number>,
  total: number,
  excluded: number | undefined,
  rng: Rng,
): number {
  let r = rng.next() * total;
  if (!(total > 0)) return excluded ?? (ids[0] as number);
  let last = -1;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    if (id === excluded) continue;
    last = id;
    r -= weights[i] as number;
    if (r < 0) return id;
  }
  return last;
}
