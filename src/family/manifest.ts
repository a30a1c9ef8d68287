import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';

/** One file of the model family (a GGUF, an ONNX export, …) as listed in manifest.json. */
export interface VariantInfo {
  /** e.g. "gguf-q4_k_m", "onnx-int8". */
  readonly id: string;
  readonly framework: string;
  readonly format: string;
  /** "f32", "q4_k_m", "int8", … */
  readonly precision: string;
  /** Absolute path of the file. */
  readonly file: string;
  /** Bytes on disk, an ONNX variant's external data file included (what serving it reads). */
  readonly bytes?: number | undefined;
  readonly sha256?: string | undefined;
  readonly perplexity?: number | undefined;
}

/**
 * The model family the tiers serve (models/<family>/manifest.json, written by models/build.sh).
 * Read leniently: only the fields the gateway needs are interpreted, the rest is kept raw
 * for tiers that want more (e.g. the ONNX tier's architecture sizes).
 */
export interface ModelFamily {
  readonly dir: string;
  /** Family id, e.g. "tiny-brown"; the directory name when there is no manifest. */
  readonly id: string;
  readonly variants: readonly VariantInfo[];
  /** The parsed manifest.json, or undefined when the directory has none. */
  readonly manifest: Readonly<Record<string, unknown>> | undefined;
}

export class ModelFileError extends Error {
  readonly code = 'TIERGATE_ERR_MODEL_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}

export function loadModelFamily(dir: string): ModelFamily {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    return { dir, id: basename(dir), variants: [], manifest: undefined };
  }
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ModelFileError(`cannot read ${manifestPath}: ${(err as Error).message}`);
  }
  const id = firstString(manifest, ['id', 'model_id', 'modelId', 'name']) ?? basename(dir);
  return { dir, id, variants: readVariants(manifest.variants, dir), manifest };
}

function readVariants(raw: unknown, dir: string): VariantInfo[] {
  const entries: [string | undefined, Record<string, unknown>][] = Array.isArray(raw)
    ? raw.filter(isRecord).map((v) => [undefined, v])
    : isRecord(raw)
      ? Object.entries(raw).flatMap(([k, v]) =>
          isRecord(v) ? [[k, v] as [string, Record<string, unknown>]] : [],
        )
      : [];
  const out: VariantInfo[] = [];
  for (const [key, v] of entries) {
    const file = firstString(v, ['file', 'path', 'filename']);
    const variantId = firstString(v, ['id', 'variant', 'name']) ?? key;
    if (file === undefined || variantId === undefined) continue;
    out.push({
      id: variantId,
      framework: firstString(v, ['framework']) ?? '',
      format: firstString(v, ['format']) ?? file.split('.').pop() ?? '',
      precision: firstString(v, ['precision', 'quantization', 'dtype']) ?? '',
      file: isAbsolute(file) ? file : resolve(dir, file),
      bytes: variantBytes(v),
      sha256: firstString(v, ['sha256']),
      perplexity: firstNumber(v, ['perplexity', 'ppl', 'val_perplexity']),
    });
  }
  return out;
}

/** The variant's file size plus its external data file's (ONNX weights live beside the graph). */
function variantBytes(v: Record<string, unknown>): number | undefined {
  const own = firstNumber(v, ['bytes', 'size', 'size_bytes']);
  const data = v['external_data'];
  const extra = isRecord(data) ? firstNumber(data, ['bytes']) : undefined;
  return own === undefined ? undefined : own + (extra ?? 0);
}

/**
 * Resolves a tier's `model` option: a variant id from the manifest, or a file path.
 * Throws a ModelFileError naming the known variants when neither matches an existing file.
 */
export function resolveVariant(family: ModelFamily, model: string, extension: string): VariantInfo {
  const byId = family.variants.find((v) => v.id === model || basename(v.file) === model);
  const variant = byId ?? variantFromPath(family, model);
  if (variant === undefined || !existsSync(variant.file)) {
    const known = family.variants.filter((v) => v.file.endsWith(extension)).map((v) => v.id);
    const hint =
      known.length > 0 ? `known ${extension} variants: ${known.join(', ')}` : `no manifest in ${family.dir}`;
    const where = variant === undefined ? model : variant.file;
    throw new ModelFileError(`model file not found: ${where} (${hint}; run \`npm run models:build\`?)`);
  }
  return variant;
}

function variantFromPath(family: ModelFamily, model: string): VariantInfo | undefined {
  if (!isAbsolute(model)) {
    // A bare file name means a file of the family directory.
    return model.includes('/') ? undefined : variantFromPath(family, join(family.dir, model));
  }
  const listed = family.variants.find((v) => v.file === model);
  if (listed !== undefined) return listed;
  const name = basename(model);
  const precision = /[-_.]((?:f|fp|q|int)\d[\w]*)\.\w+$/i.exec(name)?.[1]?.toLowerCase() ?? 'unknown';
  const format = name.split('.').pop() ?? '';
  return { id: `${format}-${precision}`, framework: '', format, precision, file: model };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstString(o: Record<string, unknown>, keys: readonly string[]): string | undefined {
  for (const k of keys) if (typeof o[k] === 'string') return o[k];
  return undefined;
}

function firstNumber(o: Record<string, unknown>, keys: readonly string[]): number | undefined {
  for (const k of keys) if (typeof o[k] === 'number') return o[k];
  return undefined;
}

/** The family's golden tokenisation (golden.json, written at build time), as the gateway checks it. */
export interface GoldenTokens {
  readonly samples: readonly { readonly text: string; readonly ids: readonly number[] }[];
}

/** Undefined when the family has no golden file (e.g. a bare GGUF folder without a manifest). */
export function readGoldenTokens(family: ModelFamily): GoldenTokens | undefined {
  const name = family.manifest?.['golden_file'];
  if (typeof name !== 'string') return undefined;
  const path = join(family.dir, name);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelFileError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (!isRecord(raw) || !Array.isArray(raw['tokenizer_samples'])) {
    throw new ModelFileError(`${path}: no tokenizer_samples`);
  }
  return { samples: raw['tokenizer_samples'] as GoldenTokens['samples'] };
}
