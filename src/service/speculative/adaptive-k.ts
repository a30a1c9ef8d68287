/**
 * How many tokens to draft per verify step (docs/speculative.md "Adaptive k"). With a per-position acceptance rate α, a draft of k tokens yields
 * E(k) = (1 − α^(k+1)) / (1 − α) tokens per step (the accepted prefix plus the verifier's own
 * token), at a cost of k drafted tokens plus one verify pass over k + 1 positions. The best k
 * maximises tokens per millisecond; both costs are measured per tier pair.
 */

/** Expected tokens emitted by one verify step of a k-token draft. */
export function expectedTokens(alpha: number, k: number): number {
  if (alpha >= 1) return k + 1;
  if (alpha <= 0) return 1;
  return (1 - alpha ** (k + 1)) / (1 - alpha);
}

/** Measured costs of a pair: drafting per token, and a verify pass over n positions. */
export interface StepCosts {
  readonly draftMsPerToken: number;
  verifyMs(positions: number): number;
}

/** The k in [1, maxK] with the most expected tokens per millisecond, and that rate. */
export function bestK(alpha: number, costs: StepCosts, maxK: number): { k: number; tokensPerMs: number } {
  let best = { k: 1, tokensPerMs: -Infinity };
  for (let k = 1; k <= Math.max(1, maxK); k++) {
    const ms = k * costs.draftMsPerToken + costs.verifyMs(k + 1);
    const rate = expectedTokens(alpha, k) / Math.max(ms, 1e-6);
    if (rate > best.tokensPerMs) best = { k, tokensPerMs: rate };
  }
  return best;
}

/** Weight of the newest observation in the running means (about the last 20 steps). */
const ALPHA_EWMA = 0.05;

/**
 * What a tier pair has measured across requests: acceptance, draft cost per token and verify
 * cost by the number of positions verified (a line through the measured points). Starts from
 * priors until measured; shared by every request of the pair.
 */
export class PairStats {
  acceptance: number;
  draftMsPerToken: number | undefined;
  private readonly verify = new Map<number, number>();

  constructor(priorAcceptance = 0.8) {
    this.acceptance = priorAcceptance;
  }

  /** A verify step: `accepted` of `drafted` tokens, so accepted + (1 if one was rejected) positions examined. */
  observeAcceptance(accepted: number, drafted: number): void {
    const examined = accepted < drafted ? accepted + 1 : drafted;
    if (examined === 0) return;
    const rate = accepted / examined;
    // One EWMA step per examined position, so a long draft weighs as the positions it tested.
    this.acceptance += (1 - (1 - ALPHA_EWMA) ** examined) * (rate - this.acceptance);
  }

  observeDraft(ms: number, tokens: number): void {
    if (tokens <= 0) return;
    const per = ms / tokens;
    this.draftMsPerToken =
      this.draftMsPerToken === undefined ? per : this.draftMsPerToken + 0.1 * (per - this.draftMsPerToken);
  }

  observeVerify(ms: number, positions: number): void {
    const old = this.verify.get(positions);
    this.verify.set(positions, old === undefined ? ms : old + 0.1 * (ms - old));
  }

  /** The k the measured acceptance and costs favour now (the route's k until measured). */
  bestK(maxK: number, fallback = 1): number {
    const costs = this.costs();
    return costs === undefined ? fallback : bestK(this.acceptance, costs, maxK).k;
  }

  /** The costs to choose k with, or undefined until both sides were measured once. */
  costs(): StepCosts | undefined {
    const draft = this.draftMsPerToken;
    if (draft === undefined || this.verify.size === 0) return undefined;
    const { a, b } = this.verifyLine();
    // Never below the cheapest pass measured: extrapolating the line down to few positions gave
    // a 1 ms pass on the PyTorch sidecar (bench:speculative), and adaptive k then drafted 1 token.
    let lowest = Infinity;
    for (const ms of this.verify.values()) lowest = Math.min(lowest, ms);
    return { draftMsPerToken: draft, verifyMs: (n) => Math.max(a + b * n, lowest, 0.01) };
  }

  /**
   * verify(n) ≈ a + b·n, least squares over the measured n. With one n measured, b is a tenth of
   * that cost per position: a multi-token pass of a small model on a CPU costs little more than a
   * one-token pass (memory-bound: the weights are read once either way).
   */
  private verifyLine(): { a: number; b: number } {
    const points = [...this.verify.entries()];
    if (points.length === 1) {
      const [n, ms] = points[0]!;
      const b = ms / 10;
      return { a: ms - b * n, b };
    }
    const mx = points.reduce((s, [n]) => s + n, 0) / points.length;
    const my = points.reduce((s, [, ms]) => s + ms, 0) / points.length;
    let sxy = 0;
    let sxx = 0;
    for (const [n, ms] of points) {
      sxy += (n - mx) * (ms - my);
      sxx += (n - mx) ** 2;
    }
    const b = Math.max(0, sxy / sxx);
    return { a: my - b * mx, b };
  }
}

/** Every EXPLORE_EVERY steps an adaptive k tries one more or one fewer, so both stay measured. */
export const EXPLORE_EVERY = 8;

/**
 * The k for the next step: the best for the pair's measured acceptance and costs, and now and
 * then one above or below it (without that, a k never tried would never be measured).
 */
export function nextK(stats: PairStats, maxK: number, steps: number, k: number): number {
  if (stats.costs() === undefined) return k;
  const best = stats.bestK(maxK, k);
  if (steps % EXPLORE_EVERY !== EXPLORE_EVERY - 1) return best;
  const probe = steps % (2 * EXPLORE_EVERY) === EXPLORE_EVERY - 1 ? best + 1 : best - 1;
  return Math.max(1, Math.min(maxK, probe));
}
