/**
 * The reference model family on disk (models/tiny/): paths, manifest / golden / eval-slice types
 * and readers. Written by models/build.sh; read by verify, tests, benchmarks and the tiers.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The family's folder; TIERGATE_MODELS_OUT overrides it (build.sh stages a rebuild there). */
export const FAMILY_DIR = process.env['TIERGATE_MODELS_OUT'] || join(MODELS_DIR, 'tiny');

/** Intermediate build files (gitignored). */
export const WORK_DIR = join(MODELS_DIR, 'tiny', 'work');

export type VariantFramework = 'llama.cpp' | 'onnxruntime' | 'pytorch';

export interface ManifestVariant {
  readonly id: string;
  readonly framework: VariantFramework;
  readonly format: 'gguf' | 'onnx' | 'pytorch';
  readonly precision: string;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Validation perplexity on the manifest's eval slice, measured by `framework`. */
  readonly perplexity: number;
}

export interface Manifest {
  readonly id: string;
  readonly architecture: Record<string, number | string | boolean>;
  readonly parameters: number;
  readonly tokenizer: {
    readonly file: string;
    readonly type: string;
    readonly vocab_size: number;
    readonly bos_id: number;
    readonly eos_id: number;
    readonly unk_id: number;
    readonly add_bos: boolean;
    readonly chat_template: string;
  };
  readonly corpus: Record<string, unknown>;
  readonly evaluation: { readonly slice_file: string; readonly windows: number; readonly tokens: number };
  readonly variants: readonly ManifestVariant[];
  readonly [key: string]: unknown;
}

export interface GoldenPrompt {
  readonly text: string;
  readonly ids: readonly number[];
  readonly next_token_logits: readonly number[];
  readonly greedy: readonly number[];
}

export interface Golden {
  readonly vocab_size: number;
  readonly bos_id: number;
  readonly tokenizer_samples: readonly { readonly text: string; readonly ids: readonly number[] }[];
  readonly prompts: readonly GoldenPrompt[];
}

export interface EvalSlice {
  readonly description: string;
  readonly windows: readonly (readonly number[])[];
}

function readJson<T>(name: string, dir: string): T {
  return JSON.parse(readFileSync(join(dir, name), 'utf8')) as T;
}

export const readManifest = (dir = FAMILY_DIR): Manifest => readJson<Manifest>('manifest.json', dir);
export const readGolden = (dir = FAMILY_DIR): Golden => readJson<Golden>('golden.json', dir);
export const readEvalSlice = (dir = FAMILY_DIR): EvalSlice => readJson<EvalSlice>('eval-slice.json', dir);

export function variantPath(v: Pick<ManifestVariant, 'file'>, dir = FAMILY_DIR): string {
  return join(dir, v.file);
}
