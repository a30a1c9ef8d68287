/**
 * A model family on disk (models/<id>/): paths, manifest / golden / eval-slice types and readers.
 * Written by models/build.py; read by verify, tests, benchmarks and the tiers. The family is
 * TIERGATE_FAMILY (default tiny), or the folder TIERGATE_MODELS_OUT (the build's stage).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The family's id (models/families/<id>.json). */
export const FAMILY_ID = process.env['TIERGATE_FAMILY'] || 'tiny';

/** The family's folder; TIERGATE_MODELS_OUT overrides it (models/build.py stages a rebuild there). */
export const FAMILY_DIR = process.env['TIERGATE_MODELS_OUT'] || familyDir(FAMILY_ID);

/** Intermediate build files (gitignored). */
export const WORK_DIR = process.env['TIERGATE_WORK_DIR'] || join(familyDir(FAMILY_ID), 'work');

export function familyDir(id: string): string {
  return join(MODELS_DIR, id);
}

/** The family file's fields the TypeScript tools read (validated by models/lib/tiergate_model/family.py). */
export interface FamilyFile {
  readonly id: string;
  readonly name: string;
  readonly master: string | null;
  readonly commit_limit_mb: number;
  readonly variants: readonly string[];
}

export function readFamilyFile(id: string): FamilyFile {
  return JSON.parse(readFileSync(join(MODELS_DIR, 'families', `${id}.json`), 'utf8')) as FamilyFile;
}

/** One variant the build produces (work/variants.json, written by models/build.py). */
export interface PlannedVariant {
  readonly id: string;
  readonly framework: VariantFramework;
  readonly format: 'gguf' | 'onnx' | 'pytorch' | 'tensorflow';
  readonly precision: string;
  readonly file: string;
}

export const readPlannedVariants = (dir = WORK_DIR): PlannedVariant[] =>
  readJson<PlannedVariant[]>('variants.json', dir);

export type VariantFramework = 'llama.cpp' | 'onnxruntime' | 'pytorch' | 'tensorflow';

export interface ManifestVariant {
  readonly id: string;
  readonly framework: VariantFramework;
  readonly format: 'gguf' | 'onnx' | 'pytorch' | 'tensorflow';
  readonly precision: string;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Validation perplexity on the manifest's eval slice, measured by `framework`. */
  readonly perplexity: number;
  /** GGUF only: how many tensors of each ggml type the file really holds. */
  readonly tensor_types?: Readonly<Record<string, number>>;
  /** ONNX only: the weights, stored as ONNX external data in one file beside the graph
   * (models/lib/tiergate_model/onnx_writer.py); `bytes`/`sha256` above are the graph file's. */
  readonly external_data?: VariantFile;
}

/** One file on disk with its recorded size and hash. */
export interface VariantFile {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** Every file a variant consists of: its own file, then its external data file if any. */
export function variantFiles(v: ManifestVariant): VariantFile[] {
  return [{ file: v.file, bytes: v.bytes, sha256: v.sha256 }, ...(v.external_data ? [v.external_data] : [])];
}

export interface Manifest {
  readonly id: string;
  /** The family id (absent in manifests written before family files). */
  readonly family?: string;
  /** Families that commit only one master file record it here (models/build.py --from-master). */
  readonly master?: { readonly variant: string; readonly file: string; readonly sha256: string };
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
  /** A chat prompt: its ids come from the chat template (special tokens), not from tokenising text. */
  readonly chat?: boolean;
  readonly ids: readonly number[];
  readonly next_token_logits: readonly number[];
  readonly greedy: readonly number[];
}

export interface Golden {
  readonly vocab_size: number;
  readonly bos_id: number;
  readonly tokenizer_samples: readonly { readonly text: string; readonly ids: readonly number[] }[];
  /** A conversation and the ids the family's chat template gives it (absent in older families). */
  readonly chat?: {
    readonly template: string;
    readonly messages: readonly { readonly role: string; readonly content: string }[];
    readonly ids: readonly number[];
  };
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

/** Path of the manifest variant with this id (e.g. "gguf-f32"); throws when the manifest lacks it. */
export function variantFileById(id: string, dir = FAMILY_DIR): string {
  const v = readManifest(dir).variants.find((x) => x.id === id);
  if (v === undefined) throw new Error(`the manifest in ${dir} has no variant ${id}`);
  return join(dir, v.file);
}
