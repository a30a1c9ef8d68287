/**
 * The sampling vocabulary tiers and the gateway's JS sampler share (the Tier contract, src/tiers/tier.ts,
 * re-exports these): defined here so that text/ needs nothing from tiers/.
 */

/** Sampling settings; temperature 0 means greedy (argmax). */
export interface SamplingParams {
  readonly temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables it. */
  readonly topP: number;
  /** Keep only the k most likely tokens; 0 disables it. */
  readonly topK: number;
  /** Seed for reproducible sampling; undefined means a random seed. */
  readonly seed?: number | undefined;
}

export interface TokenLogprob {
  readonly token: number;
  readonly logprob: number;
}
