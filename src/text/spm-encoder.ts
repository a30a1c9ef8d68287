import type { SpmVocab } from './spm-vocab.js';

interface Symbol {
  /** Start and end (UTF-16 units) of the symbol's text in the escaped input. */
  start: number;
  end: number;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/**
 * Pure-JS SentencePiece encoding with llama.cpp's algorithm (llm_tokenizer_spm, unparsed special
 * tokens): one symbol per character, repeatedly merge the adjacent pair whose joined text is the
 * highest-scoring token (ties: leftmost), then resegment any symbol that is not a token through
 * the recorded merges or into byte-fallback tokens. Same ids as llama.cpp, without a native call
 * per request.
 */
export class SpmEncoder {
  private readonly ids = new Map<string, number>();
  private readonly scores: readonly number[];
  private readonly bytes: number[] = [];
  private readonly encoder = new TextEncoder();
  private readonly addSpacePrefix: boolean;

  constructor(vocab: SpmVocab) {
    this.scores = vocab.scores;
    this.addSpacePrefix = vocab.addSpacePrefix;
    // llama.cpp's token_to_id map: the last id wins for duplicate texts, as in a std::map assignment.
    vocab.texts.forEach((text, id) => this.ids.set(text, id));
    for (let b = 0; b < 256; b++) {
      const id = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id === undefined) throw new Error(`vocabulary has no byte token for 0x${b.toString(16)}`);
      this.bytes.push(id);
    }
  }

  /** Text → ids without BOS (node-llama-cpp's `tokenize(text, false)`). */
  encode(text: string): number[] {
    if (text === '') return [];
    const s = (this.addSpacePrefix ? ' ' + text : text).replaceAll(' ', '\u2581');
    const symbols: Symbol[] = [];
    for (let i = 0; i < s.length;) {
      const cp = s.codePointAt(i)!;
      const end = i + (cp > 0xffff ? 2 : 1);
      symbols.push({
        start: i,
        end,
        prev: symbols.length - 1,
        next: end === s.length ? -1 : symbols.length + 1,
      });
      i = end;
    }
    const heap = new BigramHeap();
    const revMerge = new Map<string, [number, number]>();
    const tryAdd = (left: number, right: number): void => {
      if (left === -1 || right === -1) return;
      const text = s.slice(symbols[left]!.start, symbols[right]!.end);
      const id = this.ids.get(text);
      if (id === undefined) return;
      heap.push({ left, right, score: this.scores[id]!, size: text.length });
      revMerge.set(text, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);
    for (let bigram = heap.pop(); bigram !== undefined; bigram = heap.pop()) {
      const l = symbols[bigram.left]!;
      const r = symbols[bigram.right]!;
      // Skip pairs whose symbols were merged into something else since they were queued.
      if (l.end === l.start || r.end === r.start || r.end - l.start !== bigram.size || l.end !== r.start) {
        continue;
      }
      l.end = r.end;
      r.end = r.start;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next]!.prev = bigram.left;
      tryAdd(l.prev, bigram.left);
      tryAdd(bigram.left, l.next);
    }
    const out: number[] = [];
    const resegment = (sym: Symbol): void => {
      const text = s.slice(sym.start, sym.end);
      const id = this.ids.get(text);
      if (id !== undefined) {
        out.push(id);
        return;
      }
      const merge = revMerge.get(text);
      if (merge === undefined) {
        for (const b of this.encoder.encode(text)) out.push(this.bytes[b]!);
        return;
      }
      resegment(symbols[merge[0]]!);
      resegment(symbols[merge[1]]!);
    };
    for (let i = 0; i !== -1; i = symbols[i]!.next) resegment(symbols[i]!);
    return out;
  }
}

/** Max-heap on score, ties to the smaller left index (llama.cpp's comparator). */
class BigramHeap {
  private readonly items: Bigram[] = [];

  push(b: Bigram): void {
    const a = this.items;
    a.push(b);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Bigram | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Bigram, y: Bigram): boolean {
  return x.score > y.score || (x.score === y.score && x.left < y.left);
}
