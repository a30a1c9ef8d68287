import type { Tokenizer } from '../../src/text/tokenizer.js';

/**
 * The same tokenizer without `tokenBytes`: IncrementalDetokenizer then takes its window path
 * (two decodes of a short window per token). Tests compare the two paths; bench/tokenizer.ts
 * times them.
 */
export function withoutTokenBytes(tokenizer: Tokenizer): Tokenizer {
  return {
    vocabSize: tokenizer.vocabSize,
    bos: tokenizer.bos,
    stopTokens: tokenizer.stopTokens,
    trainContextLength: tokenizer.trainContextLength,
    tokenize: (text) => tokenizer.tokenize(text),
    detokenize: (tokens, previous) => tokenizer.detokenize(tokens, previous),
    close: async () => {},
  };
}
