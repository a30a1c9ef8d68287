import type { Token } from 'node-llama-cpp';
import type { TokenLogprob } from '../tier.js';

/**
 * The k most likely tokens with natural-log probabilities, best first. node-llama-cpp's map is
 * not reliably ordered (seen here: greedy sampling put a less likely token first), so the top k
 * are selected explicitly, in one pass with a small sorted buffer.
 */
export function topOf(probabilities: ReadonlyMap<Token, number>, k: number): TokenLogprob[] {
  const best: { token: number; p: number }[] = [];
  for (const [token, p] of probabilities) {
    if (best.length === k && p <= best[k - 1]!.p) continue;
    let i = best.length;
    while (i > 0 && best[i - 1]!.p < p) i--;
    best.splice(i, 0, { token: token as number, p });
    if (best.length > k) best.pop();
  }
  return best.map((b) => ({ token: b.token, logprob: Math.log(b.p) }));
}
