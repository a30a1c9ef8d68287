/** Numeric comparison helpers and the stated cross-framework tolerances (docs/models.md). */

/**
 * Max |logit difference| allowed against PyTorch FP32 (golden logits are rounded to 1e-5).
 * ONNX Runtime runs the same graph with other kernels (fused MatMul, different summation order);
 * llama.cpp additionally computes attention and RMSNorm its own way. A converted family whose
 * reference GGUF is F16 (`tiergate convert --gguf f16`) is checked against PyTorch on the same
 * F16-valued weights, but llama.cpp multiplies F16 weights with F16-rounded activations: measured
 * <= 2.1e-3 on the tiny-shaped conversion of test/models/convert.test.ts, more on larger models.
 */
export const LOGIT_TOLERANCE = { onnx: 1e-4, gguf: 5e-3, ggufF16: 2e-2 } as const;

/**
 * A tolerance for logits of any size: the stated one up to |logit| 10 (the bundled models' range),
 * growing in proportion beyond, as float32 summation-order differences grow with the values summed.
 * Used for converted checkpoints, whose logits can be far larger (models/verify.ts --converted).
 */
export function scaledTolerance(tolerance: number, logits: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, Math.abs(logits[i] as number));
  return tolerance * Math.max(1, max / 10);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/**
 * Largest allowed relative validation-perplexity increase of a quantized variant over the FP32
 * variant of the same framework. Measured on the full slice (docs/models.md): Q8_0 +0.02%,
 * Q4_K_M +0.16%, Q3_K_S +0.65%, Q2_K +1.8%, ONNX INT8 +0.16%, INT4 +0.26%; the bounds leave
 * room (4x or more) for a rebuild and for the shorter slice the test uses.
 */
export const PERPLEXITY_BOUNDS: Readonly<
  Record<string, { readonly base: string; readonly maxIncrease: number }>
> = {
  'gguf-q8_0': { base: 'gguf-f32', maxIncrease: 0.01 },
  'gguf-q4_k_m': { base: 'gguf-f32', maxIncrease: 0.02 },
  'gguf-q3_k_s': { base: 'gguf-f32', maxIncrease: 0.04 },
  'gguf-q2_k': { base: 'gguf-f32', maxIncrease: 0.08 },
  'onnx-int8': { base: 'onnx-fp32', maxIncrease: 0.01 },
  'onnx-int4': { base: 'onnx-fp32', maxIncrease: 0.02 },
};
