/**
 * Token sampling shared by every tier that samples in TypeScript: greedy, temperature, top-k,
 * top-p (nucleus), a seeded PRNG for reproducibility, and log-probabilities with top alternatives.
 * Pure functions over a logits vector; the only state is the PRNG, owned by the caller (one per
 * sequence) so that batching never changes which random numbers a sequence sees.
 */
import type { SamplingParams, TokenLogprob } from './sampling-params.js';

/** A source of uniform numbers in [0, 1). */
export interface Rng {
  next(): number;
}

/**
 * mulberry32: a 32-bit-state generator with good statistical quality for sampling and a trivially
 * serialisable state. Cryptographic strength is not needed; reproducibility from a seed is.
 */
export function createRng(seed?: number): Rng {
  let state = (seed ?? Math.floor(Math.random() * 0x1_0000_0000)) >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
    },
  };
}

/** log(sum(exp(logits))) in float64, stable against large logits. */
export function logSumExp(logits: ArrayLike<number>): number {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i] as number);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp((logits[i] as number) - max);
  return max + Math.log(sum);
}

/** Natural-log softmax in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const lse = logSumExp(logits);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = (logits[i] as number) - lse;
  return out;
}

/** Index of the largest value; the lowest index wins ties so greedy decoding is deterministic. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * The k largest entries of `values` (logits or logprobs), best first, ties to the lower index;
 * each as { token: index, logprob: value }.
 */
export function topEntries(values: ArrayLike<number>, k: number): TokenLogprob[] {
  if (k <= 0) return [];
  const top: TokenLogprob[] = [];
  for (let i = 0; i < values.length; i++) {
    const lp = values[i] as number;
    if (top.length === k && lp <= (top[k - 1] as TokenLogprob).logprob) continue;
    // Insertion into a short sorted list: k is small (OpenAI caps top_logprobs at 20).
    let at = top.length;
    while (at > 0 && (top[at - 1] as TokenLogprob).logprob < lp) at--;
    top.splice(at, 0, { token: i, logprob: lp });
    if (top.length > k) top.pop();
  }
  return top;
}

export interface SampledToken {
  readonly token: number;
  /** Log-probability under the untransformed distribution (before temperature/top-k/top-p). */
  readonly logprob: number;
  /** The `topLogprobs` most likely tokens under the same distribution, best first. */
  readonly top?: readonly TokenLogprob[] | undefined;
}

/**
 * Candidate token ids with their transformed log-weights, after temperature, top-k and top-p.
 * Exported for tests; returned best first.
 */
export function candidates(
  logits: ArrayLike<number>,
  params: SamplingParams,
): { ids: number[]; weights: number[] } {
  const n = logits.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  const k = params.topK > 0 ? Math.min(params.topK, n) : n;
  const ids = order.slice(0, k);
  const scaled = ids.map((i) => (logits[i] as number) / params.temperature);
  const max = scaled[0] ?? 0;
  let weights = scaled.map((s) => Math.exp(s - max));
  if (params.topP < 1) {
    const total = weights.reduce((a, b) => a + b, 0);
    // Keep the smallest prefix whose mass reaches topP (always at least one token).
    let mass = 0;
    let keep = 0;
    while (keep < weights.length) {
      mass += (weights[keep] as number) / total;
      keep++;
      if (mass >= params.topP) break;
    }
    ids.length = keep;
    weights = weights.slice(0, keep);
  }
  return { ids, weights };
}

/**
 * Picks the next token from one logits row. temperature 0 (or below) is greedy; otherwise the
 * distribution is scaled by 1/temperature, cut to top-k then top-p, renormalised and sampled
 * with `rng`. The reported logprob is always from the raw distribution, as OpenAI reports it.
 */
export function sampleToken(
  logits: ArrayLike<number>,
  params: SamplingParams,
  rng: Rng,
  topLogprobs = 0,
): SampledToken {
  // Log-probabilities are logits - logsumexp; computed only where needed, without allocating a
  // vocabulary-sized array per step (this runs for every sequence of every batched step).
  const lse = logSumExp(logits);
  let token: number;
  if (!(params.temperature > 0)) {
    token = argmax(logits);
  } else {
    const { ids, weights } = candidates(logits, params);
    const total = weights.reduce((a, b) => a + b, 0);
    let r = rng.next() * total;
    token = ids[ids.length - 1] as number;
    for (let i = 0; i < ids.length; i++) {
      r -= weights[i] as number;
      if (r < 0) {
        token = ids[i] as number;
        break;
      }
    }
  }
  const top =
    topLogprobs > 0
      ? topEntries(logits, topLogprobs).map((e) => ({ token: e.token, logprob: e.logprob - lse }))
      : undefined;
  return { token, logprob: (logits[token] as number) - lse, top };
}
