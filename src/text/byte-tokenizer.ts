import type { Tokenizer } from './tokenizer.js';

/** Ids below this are special (0 unk, 1 BOS, 2 EOS), as in SentencePiece's defaults. */
const OFFSET = 3;
/** One array per byte value, so tokenBytes does not allocate. */
const BYTES = Array.from({ length: 256 }, (_, i) => Uint8Array.of(i));
const EMPTY = new Uint8Array(0);

/**
 * One token per UTF-8 byte. It lets the gateway run and be tested without any model file (echo
 * tier); a byte split inside a multi-byte character also exercises UTF-8-safe detokenisation.
 */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256 + OFFSET;
  readonly bos = 1;
  readonly stopTokens = [2];
  readonly trainContextLength = 0;
  private readonly encoder = new TextEncoder();
  // Not fatal: an incomplete sequence decodes to U+FFFD, which the incremental detokenizer holds back.
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  tokenize(text: string): number[] {
    return Array.from(this.encoder.encode(text), (b) => b + OFFSET);
  }

  detokenize(tokens: readonly number[]): string {
    const bytes = Uint8Array.from(
      tokens.filter((t) => t >= OFFSET && t < this.vocabSize),
      (t) => t - OFFSET,
    );
    return this.decoder.decode(bytes);
  }

  tokenBytes(token: number): Uint8Array {
    // Specials and out-of-range ids print nothing, as in detokenize.
    return token >= OFFSET && token < this.vocabSize ? BYTES[token - OFFSET]! : EMPTY;
  }

  async close(): Promise<void> {}
}
