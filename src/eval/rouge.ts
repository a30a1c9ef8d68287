/**
 * ROUGE-L (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries"): F1 of the longest
 * common subsequence between a candidate and a reference. Computed on token ids here: every tier
 * shares the tokenizer, so token-level LCS compares the tiers' continuations exactly.
 */
export function lcsLength(a: readonly number[], b: readonly number[]): number {
  // One row of the classic DP table at a time: O(|a|·|b|) time, O(|b|) memory.
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (const x of a) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] =
        x === b[j - 1] ? (prev[j - 1] as number) + 1 : Math.max(prev[j] as number, cur[j - 1] as number);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length] as number;
}

/** ROUGE-L F1 in [0, 1]; 0 when either side is empty. */
export function rougeL(candidate: readonly number[], reference: readonly number[]): number {
  const lcs = lcsLength(candidate, reference);
  if (lcs === 0) return 0;
  const precision = lcs / candidate.length;
  const recall = lcs / reference.length;
  return (2 * precision * recall) / (precision + recall);
}
