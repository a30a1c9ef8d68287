import type { CascadeSignal } from '../../routing/plan.js';
import type { TokenEvent } from '../../tiers/tier.js';

/**
 * The cascade's keep-or-escalate rule (docs/cascade.md), over the first answer's opening
 * `tokens` tokens:
 * - `mean_logprob`: the mean natural-log probability of the tokens, at least `threshold`;
 * - `min_margin`: at every token, the logprob gap between the tier's two most likely tokens at
 *   least `threshold` (a near tie is where a quantized model and its FP32 reference part ways).
 * A missing value (NaN logprob, no runner-up reported) or an answer that ended before its first
 * token counts as not confident: the request escalates rather than keep an answer nobody judged.
 */
export class Probe {
  private sum = 0;
  private min = Infinity;
  private count = 0;
  private unknown = false;

  constructor(
    readonly tokens: number,
    readonly signal: CascadeSignal,
    readonly threshold: number,
  ) {}

  /** Alternatives per token the rule needs the tier to report. */
  static topLogprobsFor(signal: CascadeSignal): number {
    return signal === 'min_margin' ? 2 : 0;
  }

  /** Adds a token event (tokens past the probe's length are ignored). */
  add(event: TokenEvent): void {
    for (let i = 0; i < event.tokens.length && this.count < this.tokens; i++, this.count++) {
      const value = this.signal === 'mean_logprob' ? event.logprobs[i]! : margin(event, i);
      if (!Number.isFinite(value)) this.unknown = true;
      else if (this.signal === 'mean_logprob') this.sum += value;
      else this.min = Math.min(this.min, value);
    }
  }

  /** True once the probe's tokens have all been seen. */
  get full(): boolean {
    return this.count >= this.tokens;
  }

  /** Tokens judged so far. */
  get seen(): number {
    return this.count;
  }

  /** The rule's value so far (mean logprob or smallest margin); NaN when none or an unknown was seen. */
  get score(): number {
    if (this.count === 0 || this.unknown) return Number.NaN;
    return this.signal === 'mean_logprob' ? this.sum / this.count : this.min;
  }

  confident(): boolean {
    const score = this.score;
    return !Number.isNaN(score) && score >= this.threshold;
  }
}

/** Logprob of the most likely token minus the runner-up's at position i (NaN when not reported). */
function margin(event: TokenEvent, i: number): number {
  const top = event.top?.[i];
  if (top === undefined || top.length < 2) return Number.NaN;
  return top[0]!.logprob - top[1]!.logprob;
}
