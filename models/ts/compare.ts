/** Numeric comparison helpers and the stated cross-framework tolerances (docs/models.md). */

/**
 * Max |logit difference| allowed against PyTorch FP32 (golden logits are rounded to 1e-5).
 * ONNX Runtime runs the same graph with other kernels (fused MatMul, different summation order);
 * llama.cpp additionally computes attention and RMSNorm its own way.
 */
export const LOGIT_TOLERANCE = { onnx: 1e-3, gguf: 5e-3 } as const;

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

/**
 * Largest allowed relative validation-perplexity increase of a quantized variant over the FP32
 * variant of the same framework (measured values and the reasoning: docs/models.md).
 */
export const PERPLEXITY_BOUNDS: Readonly<
  Record<string, { readonly base: string; readonly maxIncrease: number }>
> = {
  'gguf-q8_0': { base: 'gguf-f32', maxIncrease: 0.01 },
  'gguf-q4_k_m': { base: 'gguf-f32', maxIncrease: 0.1 },
  'gguf-q3_k_s': { base: 'gguf-f32', maxIncrease: 0.2 },
  'gguf-q2_k': { base: 'gguf-f32', maxIncrease: 0.35 },
  'onnx-int8': { base: 'onnx-fp32', maxIncrease: 0.01 },
  'onnx-int4': { base: 'onnx-fp32', maxIncrease: 0.1 },
};
