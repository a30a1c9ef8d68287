import { TOKEN_TYPE, type SpmVocab } from './spm-vocab.js';

const SPACE = 0x20;

/**
 * Pure-JS detokenisation with llama.cpp's rules for SentencePiece vocabularies (llama_detokenize
 * with remove_special = false, unparse_special = false, as node-llama-cpp calls it): normal tokens
 * give their text with `▁` as a space, byte tokens their byte, unknown, control and unused tokens
 * nothing (llama.cpp prints those only with unparse_special); with add_space_prefix, one leading space of the first token is
 * dropped. Each token's bytes are computed once, so decoding is a table lookup per token instead
 * of a native call (the hot path of streaming: two decodes per generated token).
 */
export class SpmDecoder {
  private readonly pieces: Uint8Array[];
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly addSpacePrefix: boolean;

  constructor(vocab: SpmVocab) {
    const encoder = new TextEncoder();
    this.addSpacePrefix = vocab.addSpacePrefix;
    this.pieces = vocab.texts.map((text, id) => {
      switch (vocab.types[id]) {
        case TOKEN_TYPE.normal:
          return encoder.encode(text.replaceAll('\u2581', ' '));
        case TOKEN_TYPE.byte: {
          const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
          return m?.[1] === undefined ? new Uint8Array(0) : Uint8Array.of(parseInt(m[1], 16));
        }
        default:
          return new Uint8Array(0);
      }
    });
  }

  /** Whether every id has a piece (ids outside the vocabulary are the caller's to handle). */
  covers(tokens: readonly number[]): boolean {
    for (const t of tokens) if (!(t >= 0 && t < this.pieces.length)) return false;
    return true;
  }

  /**
   * The bytes llama.cpp prints for one token; `first` as the first token of a decode call (one
   * leading space dropped with add_space_prefix). Undefined outside the vocabulary. The array is
   * shared: callers must not modify it.
   */
  piece(token: number, first: boolean): Uint8Array | undefined {
    const piece = this.pieces[token];
    if (piece === undefined) return undefined;
    return first && this.addSpacePrefix && piece[0] === SPACE ? piece.subarray(1) : piece;
  }

  decode(tokens: readonly number[]): string {
    let size = 0;
    for (const t of tokens) size += this.pieces[t]!.length;
    const out = new Uint8Array(size);
    let at = 0;
    let strip = this.addSpacePrefix;
    for (const t of tokens) {
      let piece = this.pieces[t]!;
      if (strip && piece[0] === SPACE) piece = piece.subarray(1);
      // llama.cpp clears the flag after the first token even when it printed nothing.
      strip = false;
      out.set(piece, at);
      at += piece.length;
    }
    return this.decoder.decode(out.subarray(0, at));
  }
}
