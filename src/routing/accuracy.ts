import type { ModelFamily, VariantInfo } from '../family/manifest.js';

/**
 * The family's FP32 reference variant: PyTorch FP32 when the manifest lists it (the model as
 * trained), else any FP32/F32 variant.
 */
export function referenceVariant(family: ModelFamily): VariantInfo | undefined {
  const fp32 = (v: VariantInfo): boolean => /^f(p)?32$/i.test(v.precision) && v.perplexity !== undefined;
  return family.variants.find((v) => v.framework === 'pytorch' && fp32(v)) ?? family.variants.find(fp32);
}

/**
 * Accuracy of a variant relative to the FP32 reference: exp(−(ln ppl_variant − ln ppl_ref)),
 * i.e. ppl_ref / ppl_variant — 1 for the reference, below 1 as quantisation costs perplexity.
 * Capped at 1: a variant measuring a hair better than FP32 is noise, not a better model.
 * Undefined when either perplexity is unknown.
 */
export function relativeAccuracy(family: ModelFamily, variantId: string): number | undefined {
  const ref = referenceVariant(family)?.perplexity;
  const ppl = family.variants.find((v) => v.id === variantId)?.perplexity;
  if (ref === undefined || ppl === undefined || ppl <= 0 || ref <= 0) return undefined;
  return Math.min(1, Math.exp(-(Math.log(ppl) - Math.log(ref))));
}
