import type { GoldenTokens } from '../family/manifest.js';

/** One way the gateway turns text into ids (llama.cpp's vocab-only load, the JS fast path, …). */
export interface TokenEncoder {
  readonly name: string;
  encode(text: string): number[];
}

export class TokenizerMismatchError extends Error {
  readonly code = 'TIERGATE_ERR_TOKENIZER_MISMATCH';
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerMismatchError';
  }
}

/**
 * Start-up check that the gateway reproduces the family's tokenisation recorded at build time
 * (golden.json), by every encoder on every sample. A vocabulary written with the wrong tokenizer
 * type loads and serves without any other symptom (docs/models.md, "Only what serves exactly"),
 * so a mismatch stops the start.
 */
export function checkGoldenTokens(
  familyId: string,
  golden: GoldenTokens,
  encoders: readonly TokenEncoder[],
): void {
  for (const enc of encoders) {
    for (const [i, s] of golden.samples.entries()) {
      const got = enc.encode(s.text);
      const at = firstDifference(got, s.ids);
      if (at !== undefined) {
        throw new TokenizerMismatchError(
          `family ${familyId}: the ${enc.name} tokenizer does not reproduce golden sample ${i} ` +
            `(${JSON.stringify(s.text.slice(0, 60))}…): ${got.length} ids instead of ${s.ids.length}, ` +
            `first difference at id ${at} (got ${String(got[at])}, expected ${String(s.ids[at])}). ` +
            'The GGUF tokenizer does not tokenise like the model was trained: rebuild or reconvert the family.',
        );
      }
    }
  }
}

function firstDifference(a: readonly number[], b: readonly number[]): number | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return undefined;
}
