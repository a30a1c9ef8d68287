/** A chat message after validation (OpenAI roles; content already flattened to text). */
export interface ChatMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  readonly content: string;
}

/**
 * The gateway's tokenizer facade (docs/architecture.md "A request's path", step 2): every request is tokenised once here
 * and every tier receives these ids, so all tiers must share this vocabulary.
 */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Beginning-of-sequence token, prepended to prompts when the model wants one. */
  readonly bos: number | undefined;
  /** End-of-generation tokens (EOS, EOT…): tiers stop on them. */
  readonly stopTokens: readonly number[];
  /** Context length the vocabulary's model was trained with (0 when unknown). */
  readonly trainContextLength: number;
  /** Text → ids, without BOS; special-token markup in the text is treated as plain text. */
  tokenize(text: string): number[];
  /**
   * Ids → text. `previous` are ids that came just before (they decide e.g. SentencePiece's
   * leading space) and are not part of the output.
   */
  detokenize(tokens: readonly number[], previous?: readonly number[]): string;
  /**
   * The bytes `detokenize` would print for one token, so streaming can decode bytes itself
   * instead of re-decoding windows of ids. `first`: as the first token of a detokenize call
   * (where SentencePiece's add_space_prefix drops one leading space). Undefined for ids without
   * a piece; a tokenizer answering undefined for id 0 has no byte table at all (e.g. llama.cpp's
   * native decoding). The array may be shared: callers must not modify it.
   */
  tokenBytes?(token: number, first: boolean): Uint8Array | undefined;
  /**
   * The id of a special (control) token written as `text`, e.g. "<|im_start|>"; undefined when
   * the vocabulary has no such token (built-in templates then write the markup as plain text).
   */
  specialToken?(text: string): number | undefined;
  /** The model's own chat template applied to messages, when it ships one (else undefined). */
  renderNativeChat?(messages: readonly ChatMessage[]): number[] | undefined;
  close(): Promise<void>;
}

/** Prompt text → ids with BOS when the tokenizer has one. */
export function encodePrompt(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.tokenize(text);
  return tokenizer.bos === undefined ? ids : [tokenizer.bos, ...ids];
}
