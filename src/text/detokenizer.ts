import type { Tokenizer } from './tokenizer.js';

/** Tokens of context kept before the unread ones: enough for SentencePiece's leading-space rule. */
const CONTEXT_TOKENS = 4;
const REPLACEMENT = '\uFFFD';

/**
 * Turns a token stream into text deltas without ever emitting half a UTF-8 character.
 * A token may carry only part of a multi-byte character (byte-fallback tokens); decoding it
 * alone gives U+FFFD, so text is held back until the character is complete. Deltas are computed
 * as the difference of two decodes of a short window, so leading-space rules come out right.
 */
export class IncrementalDetokenizer {
  private readonly tokens: number[];
  /** Start of the decode window (context before the unread tokens). */
  private prefixOffset: number;
  /** Tokens before this index have been emitted as text. */
  private readOffset: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    promptTail: readonly number[] = [],
  ) {
    this.tokens = promptTail.slice(-CONTEXT_TOKENS);
    this.prefixOffset = 0;
    this.readOffset = this.tokens.length;
  }

  /** Adds one token; returns the text that is now complete ('' while a character is split). */
  push(token: number): string {
    this.tokens.push(token);
    const window = this.tokens.slice(this.prefixOffset);
    const prefix = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.detokenize(window);
    if (text.length <= prefix.length || text.endsWith(REPLACEMENT)) return '';
    const delta = text.slice(prefix.length);
    this.prefixOffset = Math.max(0, this.tokens.length - CONTEXT_TOKENS);
    this.readOffset = this.tokens.length;
    // Drop consumed history so memory stays constant on long generations.
    if (this.prefixOffset > 64) {
      this.tokens.splice(0, this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
    return delta;
  }

  /** Whatever is still held back (an incomplete character at the very end), decoded as is. */
  flush(): string {
    const prefix = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset));
    this.readOffset = this.tokens.length;
    return text.length > prefix.length ? text.slice(prefix.length) : '';
  }
}
