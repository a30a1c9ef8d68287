import assert from 'node:assert/strict';
import type { Tier } from '../../src/tiers/tier.js';

/**
 * Perplexity of a started tier over evaluation windows through its score(): exp of the mean
 * negative log-likelihood of every token after each window's first, as the model build measures it.
 */
export async function scorePerplexity(tier: Tier, windows: readonly (readonly number[])[]): Promise<number> {
  let nll = 0;
  let count = 0;
  for (const window of windows) {
    const logprobs = await tier.score(window);
    assert.equal(logprobs.length, window.length - 1);
    for (const lp of logprobs) nll -= lp;
    count += logprobs.length;
  }
  return Math.exp(nll / count);
}
