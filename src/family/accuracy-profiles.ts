import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The accuracy profiles file written by `tiergate eval` (docs/eval.md "Accuracy profiles"): what
 * each variant measured, relative to the FP32 reference, through the Tier interface. The policy
 * engine reads `variants[id].relativeAccuracy` for the variant a tier serves.
 */
export const PROFILES_FORMAT = 'tiergate-accuracy-profiles/1';

export interface VariantAccuracy {
  readonly framework: string;
  readonly precision: string;
  /** The target it was measured as, e.g. "edge" or "edge@gguf-q8_0". */
  readonly target: string;
  readonly perplexity: number;
  /** The manifest's perplexity for this variant, when it lists one (same slice by default). */
  readonly manifestPerplexity?: number | undefined;
  /** ppl_ref / ppl, capped at 1: exp(−(ln ppl − ln ppl_ref)), docs/routing.md "Tier profiles". */
  readonly relativeAccuracy: number;
  /** (ppl / ppl_ref − 1) × 100. */
  readonly degradationPct: number;
  /** Mean ROUGE-L F1 of greedy continuations against the held-out text. */
  readonly rougeL: number;
  /** Share of task prompts whose greedy first token is the held-out next token. */
  readonly nextTokenAccuracy: number;
  readonly scoredTokens: number;
  readonly seconds: number;
}

export interface AccuracyProfiles {
  readonly format: typeof PROFILES_FORMAT;
  readonly family: string;
  readonly generatedAt: string;
  readonly slice: { readonly source: string; readonly windows: number; readonly tokens: number };
  readonly task: {
    readonly metric: 'rouge-l';
    readonly prompts: number;
    readonly promptTokens: number;
    readonly continuationTokens: number;
  };
  readonly reference: { readonly variant: string; readonly perplexity: number; readonly measured: boolean };
  readonly variants: Readonly<Record<string, VariantAccuracy>>;
  /** Configured tier → the variant it serves, with that variant's relative accuracy. */
  readonly tiers: Readonly<Record<string, { readonly variant: string; readonly accuracy: number }>>;
}

export class ProfilesError extends Error {
  readonly code = 'TIERGATE_ERR_ACCURACY_PROFILES';
}

export function writeProfiles(path: string, profiles: AccuracyProfiles): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(profiles, null, 2)}\n`);
}

/** Reads a profiles file; undefined when it does not exist, a ProfilesError when it is not one. */
export function readProfiles(path: string): AccuracyProfiles | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ProfilesError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const p = raw as Partial<AccuracyProfiles> | null;
  if (p?.format !== PROFILES_FORMAT || typeof p.variants !== 'object') {
    throw new ProfilesError(`${path} is not a ${PROFILES_FORMAT} file`);
  }
  return p as AccuracyProfiles;
}

/** Measured relative accuracy of a variant, or undefined when the file does not list it. */
export function measuredAccuracy(
  profiles: AccuracyProfiles | undefined,
  variant: string,
): number | undefined {
  const a = profiles?.variants[variant]?.relativeAccuracy;
  return typeof a === 'number' && a > 0 && a <= 1 ? a : undefined;
}

/** Where `tiergate eval` writes by default and the policy engine looks: next to the manifest. */
export const PROFILES_FILE = 'accuracy-profiles.json';

/**
 * The family's accuracy profiles for the policy engine, or undefined when there are none or the
 * file belongs to another family. A broken file is ignored rather than fatal: routing then falls
 * back to the manifest's perplexities, as it did before any eval was run.
 */
export function loadFamilyProfiles(family: {
  readonly dir: string;
  readonly id: string;
}): AccuracyProfiles | undefined {
  try {
    const profiles = readProfiles(join(family.dir, PROFILES_FILE));
    return profiles?.family === family.id ? profiles : undefined;
  } catch {
    return undefined;
  }
}
