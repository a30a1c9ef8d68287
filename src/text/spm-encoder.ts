import type { SpmVocab } from './spm-vocab.js';

/** U+2581, SentencePiece's escaped space. */
const MARK = 0x2581;

/** Default number of cached segments; real traffic repeats the same words (Zipf), so hits dominate. */
const DEFAULT_CACHE_SIZE = 10_000;

/** Longer segments are not cached, so that the cache's memory stays bounded by entries × this. */
const MAX_CACHED_SEGMENT = 64;

export interface SpmEncoderOptions {
  /** Segments (words) whose ids are remembered; 0 disables the cache. Default 10,000. */
  readonly cacheSize?: number;
}

/**
 * Pure-JS SentencePiece encoding with llama.cpp's algorithm (llm_tokenizer_spm, unparsed special
 * tokens): one symbol per character, repeatedly merge the adjacent pair whose joined text is the
 * highest-scoring token (ties: leftmost), then resegment any symbol that is not a token into
 * byte-fallback tokens. Same ids as llama.cpp, without a native call per request.
 *
 * When the vocabulary allows it, the text is cut into words that no merge can cross, each encoded
 * on its own and cached (see `segmented`).
 */
export class SpmEncoder {
  private readonly ids = new Map<string, number>();
  private readonly scores: Float64Array;
  private readonly bytes: number[] = [];
  private readonly addSpacePrefix: boolean;
  /**
   * True when every '▁' inside a piece (not at position 0) follows another '▁'. Then no piece, so
   * no merge, can span a '▁' whose preceding character is not '▁': merges only ever join adjacent
   * symbols into a piece, so a merged symbol crossing such a position would be a piece with a
   * '▁' after a non-'▁' character. Cutting the text there therefore leaves every merge inside one
   * segment. Within a segment the queued pairs compare as in the whole text (score, then left
   * position, which keeps its order under the shift), pairs across the cut are never queued, and
   * the final resegmentation looks at one symbol at a time — so the concatenated ids are equal.
   * Vocabularies with pieces such as 'a▁b' (rare) encode the whole text at once.
   */
  private readonly segmented: boolean;
  private readonly cacheSize: number;
  private readonly cache = new Map<string, readonly number[]>();

  // Scratch space reused across calls (encode is synchronous, so never shared by two calls).
  // Symbols: [start, end) in UTF-16 units of the escaped text, linked-list neighbours, and the
  // token id once the symbol is a merge (-1 while it is a single character).
  private symStart = new Int32Array(0);
  private symEnd = new Int32Array(0);
  private symPrev = new Int32Array(0);
  private symNext = new Int32Array(0);
  private symId = new Int32Array(0);
  // Candidate pairs (bigrams), and a binary max-heap of their indices.
  private bgLeft = new Int32Array(0);
  private bgRight = new Int32Array(0);
  private bgSize = new Int32Array(0);
  private bgId = new Int32Array(0);
  private bgScore = new Float64Array(0);
  private heap = new Int32Array(0);
  private bgCount = 0;
  private heapSize = 0;

  constructor(vocab: SpmVocab, options: SpmEncoderOptions = {}) {
    this.scores = Float64Array.from(vocab.scores);
    this.addSpacePrefix = vocab.addSpacePrefix;
    this.cacheSize = Math.max(0, options.cacheSize ?? DEFAULT_CACHE_SIZE);
    // llama.cpp's token_to_id map: the last id wins for duplicate texts, as in a std::map assignment.
    vocab.texts.forEach((text, id) => this.ids.set(text, id));
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id === undefined) throw new Error(`vocabulary has no byte token for 0x${b.toString(16)}`);
      this.bytes.push(id);
    }
    this.segmented = vocab.texts.every((text) => {
      for (let i = text.indexOf('\u2581', 1); i !== -1; i = text.indexOf('\u2581', i + 1)) {
        if (text.charCodeAt(i - 1) !== MARK) return false;
      }
      return true;
    });
  }

  /** Whether texts are encoded word by word (with the cache) rather than whole. */
  get wordSegmented(): boolean {
    return this.segmented;
  }

  /** Text → ids without BOS (node-llama-cpp's `tokenize(text, false)`). Always a new array. */
  encode(text: string): number[] {
    if (text === '') return [];
    const s = (this.addSpacePrefix ? ' ' + text : text).replaceAll(' ', '\u2581');
    const out: number[] = [];
    if (!this.segmented) {
      this.encodeRange(s, 0, s.length, out);
      return out;
    }
    let from = 0;
    for (let i = s.indexOf('\u2581', 1); i !== -1; i = s.indexOf('\u2581', i + 1)) {
      if (s.charCodeAt(i - 1) === MARK) continue;
      this.encodeSegment(s, from, i, out);
      from = i;
    }
    this.encodeSegment(s, from, s.length, out);
    return out;
  }

  private encodeSegment(s: string, from: number, to: number, out: number[]): void {
    if (this.cacheSize === 0 || to - from > MAX_CACHED_SEGMENT) {
      this.encodeRange(s, from, to, out);
      return;
    }
    const key = s.slice(from, to);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
      return;
    }
    const first = out.length;
    this.encodeRange(s, from, to, out);
    // Clearing when full is crude but O(1) per call; the frequent words come straight back.
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(key, out.slice(first));
  }

  /** llama.cpp's algorithm on s[from, to), appending the ids to `out`. */
  private encodeRange(s: string, from: number, to: number, out: number[]): void {
    this.reserve(to - from);
    const { symStart, symEnd, symPrev, symNext, symId, bgLeft, bgRight, bgSize, bgId } = this;
    let n = 0;
    for (let i = from; i < to; n++) {
      const c = s.charCodeAt(i);
      // A surrogate pair is one character (one symbol), as llama.cpp splits by UTF-8 sequence.
      const width =
        c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1)) ? 2 : 1;
      symStart[n] = i;
      symEnd[n] = i + width;
      symPrev[n] = n - 1;
      symNext[n] = n + 1;
      symId[n] = -1;
      i += width;
    }
    symNext[n - 1] = -1;
    this.bgCount = 0;
    this.heapSize = 0;
    for (let i = 1; i < n; i++) this.tryAdd(s, i - 1, i);
    while (this.heapSize > 0) {
      const b = this.pop();
      const l = bgLeft[b]!;
      const r = bgRight[b]!;
      // Skip pairs whose symbols were merged into something else since they were queued.
      if (
        symEnd[l] === symStart[l] ||
        symEnd[r] === symStart[r] ||
        symEnd[r]! - symStart[l]! !== bgSize[b] ||
        symEnd[l] !== symStart[r]
      ) {
        continue;
      }
      symEnd[l] = symEnd[r]!;
      symEnd[r] = symStart[r]!;
      symId[l] = bgId[b]!;
      const next = symNext[r]!;
      symNext[l] = next;
      if (next >= 0) symPrev[next] = l;
      if (symPrev[l]! >= 0) this.tryAdd(s, symPrev[l]!, l);
      if (next >= 0) this.tryAdd(s, l, next);
    }
    // llama.cpp's resegment: a symbol is a token, else it is split through the recorded merges,
    // else into byte tokens. Every merged symbol is a token (pairs are queued only if they are),
    // and a lone character cannot be the text of a recorded merge (those have two or more), so
    // the merge map is never consulted and is not kept.
    for (let i = 0; i !== -1; i = symNext[i]!) {
      const merged = symId[i]!;
      if (merged >= 0) {
        out.push(merged);
        continue;
      }
      const id = this.ids.get(s.slice(symStart[i], symEnd[i]));
      if (id !== undefined) out.push(id);
      else this.pushBytes(s.codePointAt(symStart[i]!)!, out);
    }
  }

  /** Queues the pair (left, right) if their joined text is a token. */
  private tryAdd(s: string, left: number, right: number): void {
    const start = this.symStart[left]!;
    const end = this.symEnd[right]!;
    const id = this.ids.get(s.slice(start, end));
    if (id === undefined) return;
    const b = this.bgCount++;
    this.bgLeft[b] = left;
    this.bgRight[b] = right;
    this.bgSize[b] = end - start;
    this.bgId[b] = id;
    this.bgScore[b] = this.scores[id]!;
    this.push(b);
  }

  /** UTF-8 bytes of one code point as byte tokens (U+FFFD's for a lone surrogate, as TextEncoder). */
  private pushBytes(cp: number, out: number[]): void {
    const bytes = this.bytes;
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    if (cp < 0x80) {
      out.push(bytes[cp]!);
    } else if (cp < 0x800) {
      out.push(bytes[0xc0 | (cp >> 6)]!, bytes[0x80 | (cp & 0x3f)]!);
    } else if (cp < 0x10000) {
      out.push(bytes[0xe0 | (cp >> 12)]!, bytes[0x80 | ((cp >> 6) & 0x3f)]!, bytes[0x80 | (cp & 0x3f)]!);
    } else {
      out.push(
        bytes[0xf0 | (cp >> 18)]!,
        bytes[0x80 | ((cp >> 12) & 0x3f)]!,
        bytes[0x80 | ((cp >> 6) & 0x3f)]!,
        bytes[0x80 | (cp & 0x3f)]!,
      );
    }
  }

  /** Grows the scratch arrays for n symbols: at most n - 1 initial pairs plus 2 per merge. */
  private reserve(n: number): void {
    if (this.symStart.length >= n) return;
    const size = Math.max(n, 2 * this.symStart.length, 64);
    this.symStart = new Int32Array(size);
    this.symEnd = new Int32Array(size);
    this.symPrev = new Int32Array(size);
    this.symNext = new Int32Array(size);
    this.symId = new Int32Array(size);
    this.bgLeft = new Int32Array(3 * size);
    this.bgRight = new Int32Array(3 * size);
    this.bgSize = new Int32Array(3 * size);
    this.bgId = new Int32Array(3 * size);
    this.bgScore = new Float64Array(3 * size);
    this.heap = new Int32Array(3 * size);
  }

  /** Heap order: higher score first, ties to the smaller left index (llama.cpp's comparator). */
  private before(x: number, y: number): boolean {
    const sx = this.bgScore[x]!;
    const sy = this.bgScore[y]!;
    return sx > sy || (sx === sy && this.bgLeft[x]! < this.bgLeft[y]!);
  }

  private push(b: number): void {
    const h = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(b, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = b;
  }

  private pop(): number {
    const h = this.heap;
    const top = h[0]!;
    const size = --this.heapSize;
    if (size === 0) return top;
    const last = h[size]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const m = r < size && this.before(h[r]!, h[l]!) ? r : l;
      if (!this.before(h[m]!, last)) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = last;
    return top;
  }
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c < 0xe000;
}
