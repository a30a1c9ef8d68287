import type { AccuracyProfiles } from '../../family/accuracy-profiles.js';
import type { BenchFile, TargetBench } from '../bench-types.js';
import type { LevelResult } from '../load-run.js';

/** One measured variant: its bench figures joined with its accuracy profile. */
export interface VariantRow {
  readonly target: string;
  readonly framework: string;
  readonly variant: string;
  readonly precision: string;
  readonly fileBytes: number | undefined;
  readonly loadMs: number;
  readonly peakRssBytes: number | undefined;
  /** Direct (Tier interface) level at concurrency 1. */
  readonly single: LevelResult;
  /** Direct level with the highest tokens/s. */
  readonly best: LevelResult;
  readonly direct: readonly LevelResult[];
  readonly gateway: readonly LevelResult[];
  /** ppl_ref / ppl from the profiles file (undefined when the variant was not evaluated). */
  readonly accuracy: number | undefined;
  readonly perplexity: number | undefined;
  readonly rougeL: number | undefined;
}

/** Framework display names, in the paper's order. */
export const FRAMEWORKS: readonly { readonly id: string; readonly label: string }[] = [
  { id: 'pytorch', label: 'PyTorch' },
  { id: 'onnxruntime', label: 'ONNX Runtime' },
  { id: 'llama.cpp', label: 'llama.cpp' },
  // TensorFlow.js on its wasm (XNNPACK) backend: docs/tf-tier.md.
  { id: 'tensorflow', label: 'TensorFlow (TF.js wasm)' },
];

/** Rows for every successfully measured framework variant (echo and failed targets left out). */
export function variantRows(bench: BenchFile, profiles: AccuracyProfiles | undefined): VariantRow[] {
  const rows: VariantRow[] = [];
  for (const t of bench.targets) {
    const row = toRow(t, profiles);
    if (row !== undefined) rows.push(row);
  }
  return rows;
}

function toRow(t: TargetBench, profiles: AccuracyProfiles | undefined): VariantRow | undefined {
  if (t.error !== undefined || t.variant === undefined || t.framework === 'echo') return undefined;
  const single = t.direct.find((l) => l.concurrency === 1) ?? t.direct[0];
  if (single === undefined) return undefined;
  const best = t.direct.reduce((a, b) => (b.tokensPerSec > a.tokensPerSec ? b : a), single);
  const acc = profiles?.variants[t.variant];
  return {
    target: t.target,
    framework: t.framework,
    variant: t.variant,
    precision: t.precision,
    fileBytes: t.fileBytes,
    loadMs: t.loadMs,
    peakRssBytes: t.peakRssBytes,
    single,
    best,
    direct: t.direct,
    gateway: t.gateway,
    accuracy: acc?.relativeAccuracy,
    perplexity: acc?.perplexity,
    rougeL: acc?.rougeL,
  };
}

/** 32-bit float variants are the unquantized ones. */
export function isQuantized(precision: string): boolean {
  return !/^f(p)?32$/i.test(precision);
}
