import type { Tokenizer } from './tokenizer.js';

/**
 * The text a token adds after its predecessor, as OpenAI's logprobs report it (SentencePiece
 * pieces carry their leading space only in context, so a token is decoded after the one before).
 */
export function tokenText(tokenizer: Tokenizer, token: number, previous: number | undefined): string {
  const before = previous === undefined ? [] : [previous];
  const head = tokenizer.detokenize(before);
  const both = tokenizer.detokenize([...before, token]);
  return both.startsWith(head) ? both.slice(head.length) : tokenizer.detokenize([token]);
}
