import type { LlamaModel } from 'node-llama-cpp';

/** The parts of a SentencePiece ("llama") GGUF vocabulary that encoding and decoding need. */
export interface SpmVocab {
  /** Token text as stored in the GGUF (`▁` for spaces, `<0xXX>` for byte tokens). */
  readonly texts: readonly string[];
  readonly scores: readonly number[];
  /** GGUF token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  readonly types: readonly number[];
  readonly addSpacePrefix: boolean;
}

export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

interface GgufTokenizerMeta {
  ggml?: {
    model?: unknown;
    tokens?: unknown;
    scores?: unknown;
    token_type?: unknown;
    add_space_prefix?: unknown;
  };
}

/**
 * Reads the vocabulary from the GGUF metadata when it is a SentencePiece one that the pure-JS
 * codec supports (no user-defined tokens, which llama.cpp splits out before encoding);
 * undefined otherwise, and the caller keeps using llama.cpp.
 */
export function readSpmVocab(model: LlamaModel): SpmVocab | undefined {
  const ggml = (model.fileInfo.metadata.tokenizer as GgufTokenizerMeta | undefined)?.ggml;
  if (ggml?.model !== 'llama') return undefined;
  const { tokens, scores, token_type: types } = ggml;
  if (!isArrayOf(tokens, 'string') || !isArrayOf(scores, 'number') || !isArrayOf(types, 'number')) {
    return undefined;
  }
  if (scores.length !== tokens.length || types.length !== tokens.length) return undefined;
  if (types.includes(TOKEN_TYPE.userDefined)) return undefined;
  // llama.cpp's default for SentencePiece vocabularies when the key is absent is true.
  const addSpacePrefix = typeof ggml.add_space_prefix === 'boolean' ? ggml.add_space_prefix : true;
  return { texts: tokens, scores, types, addSpacePrefix };
}

function isArrayOf<T extends 'string' | 'number'>(
  value: unknown,
  kind: T,
): value is readonly (T extends 'string' ? string : number)[] {
  return Array.isArray(value) && value.every((v) => typeof v === kind);
}
