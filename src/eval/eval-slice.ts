import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelFamily } from '../family/manifest.js';
import { encodePrompt, type Tokenizer } from '../text/tokenizer.js';

/** Token windows of the family's validation split that perplexity is computed over. */
export interface EvalSlice {
  /** Where the windows came from, for the profiles file. */
  readonly source: string;
  readonly windows: readonly (readonly number[])[];
  /** Scored tokens: every token after the first of each window. */
  readonly tokens: number;
}

export class EvalSliceError extends Error {
  readonly code = 'TIERGATE_ERR_EVAL_SLICE';
}

function scored(windows: readonly (readonly number[])[]): number {
  return windows.reduce((n, w) => n + Math.max(0, w.length - 1), 0);
}

/**
 * The committed eval slice (manifest `evaluation.slice_file`, default eval-slice.json): the same
 * windows the manifest's perplexities were measured on, so results compare with it directly.
 * `maxTokens` keeps whole windows from the start until that many tokens are scored.
 */
export function loadCommittedSlice(family: ModelFamily, maxTokens?: number): EvalSlice {
  const evaluation = family.manifest?.evaluation as { slice_file?: unknown } | undefined;
  const name = typeof evaluation?.slice_file === 'string' ? evaluation.slice_file : 'eval-slice.json';
  const path = join(family.dir, name);
  if (!existsSync(path)) throw new EvalSliceError(`no eval slice at ${path} (run \`npm run models:build\`)`);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { windows?: unknown };
  if (!Array.isArray(raw.windows)) throw new EvalSliceError(`${path}: no "windows" array`);
  let windows = raw.windows.filter(
    (w): w is number[] => Array.isArray(w) && w.every((t) => Number.isInteger(t)),
  );
  if (maxTokens !== undefined) windows = takeTokens(windows, maxTokens);
  return { source: name, windows, tokens: scored(windows) };
}

/**
 * The whole validation split: the build's validation documents (models/<family>/work/
 * validation-docs.json, written by models:build and not committed), each tokenised as
 * BOS + ids + EOS like the slice, concatenated and cut into windows of `windowTokens`.
 */
export function loadFullSplit(
  family: ModelFamily,
  tokenizer: Tokenizer,
  windowTokens: number,
  maxTokens?: number,
): EvalSlice {
  const path = join(family.dir, 'work', 'validation-docs.json');
  if (!existsSync(path)) {
    throw new EvalSliceError(`--full needs ${path} (written by \`npm run models:build\`)`);
  }
  const docs = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (!Array.isArray(docs)) throw new EvalSliceError(`${path}: expected an array of documents`);
  const stream: number[] = [];
  for (const doc of docs) {
    if (typeof doc !== 'string') continue;
    stream.push(...encodePrompt(tokenizer, doc), ...tokenizer.stopTokens.slice(0, 1));
  }
  let windows: number[][] = [];
  for (let i = 0; i + 2 <= stream.length; i += windowTokens) windows.push(stream.slice(i, i + windowTokens));
  if (maxTokens !== undefined) windows = takeTokens(windows, maxTokens);
  return { source: 'work/validation-docs.json', windows, tokens: scored(windows) };
}

function takeTokens<T extends readonly number[]>(windows: readonly T[], maxTokens: number): T[] {
  const out: T[] = [];
  let n = 0;
  for (const w of windows) {
    if (n >= maxTokens) break;
    out.push(w);
    n += w.length - 1;
  }
  return out;
}
