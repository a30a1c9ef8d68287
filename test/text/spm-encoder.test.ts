import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpmEncoder } from '../../src/text/spm-encoder.js';
import type { SpmVocab } from '../../src/text/spm-vocab.js';
import { createRng } from '../../src/text/sampling.js';

/** Seeded numbers from the gateway's own sampler RNG, so failures reproduce. */
function rng(seed: number): () => number {
  const r = createRng(seed);
  return () => r.next();
}

const BYTE_TOKENS = Array.from(
  { length: 256 },
  (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
);

/** A vocabulary with control tokens, the 256 byte tokens and `pieces` with random scores. */
function vocabOf(pieces: readonly string[], seed: number, addSpacePrefix = true): SpmVocab {
  const next = rng(seed);
  const texts = ['<unk>', '<s>', '</s>', ...BYTE_TOKENS, ...pieces];
  // Scores repeat (rounded), so the leftmost-on-ties rule matters.
  const scores = texts.map((_, id) => (id < 259 ? 0 : -Math.round(next() * 8)));
  const types = texts.map((_, id) => (id < 3 ? 3 : id < 259 ? 6 : 1));
  return { texts, scores, types, addSpacePrefix };
}

/**
 * Obviously-correct reference for llama.cpp's SentencePiece algorithm: while some adjacent pair of
 * symbols joins into a token, merge the best one (highest score, leftmost on ties); then emit each
 * symbol's token or its UTF-8 bytes. Quadratic, for tests only.
 */
function reference(vocab: SpmVocab, text: string): number[] {
  if (text === '') return [];
  const ids = new Map<string, number>();
  vocab.texts.forEach((t, id) => ids.set(t, id));
  const s = (vocab.addSpacePrefix ? ' ' + text : text).replaceAll(' ', '\u2581');
  const symbols = Array.from(s);
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const id = ids.get(symbols[i]! + symbols[i + 1]!);
      if (id !== undefined && vocab.scores[id]! > bestScore) {
        best = i;
        bestScore = vocab.scores[id]!;
      }
    }
    if (best === -1) break;
    symbols.splice(best, 2, symbols[best]! + symbols[best + 1]!);
  }
  return symbols.flatMap((sym) => {
    const id = ids.get(sym);
    return id !== undefined ? [id] : [...new TextEncoder().encode(sym)].map((b) => ids.get(BYTE_TOKENS[b]!)!);
  });
}

/** Random strings over an alphabet with runs of spaces, new lines, tabs and byte-fallback characters. */
function randomTexts(seed: number, count: number): string[] {
  const alphabet = [...'abcab  \t\nZé', '🙂', 'é'];
  const next = rng(seed);
  const texts = [
    '',
    ' ',
    '  ',
    'a',
    ' a',
    'a ',
    '  a  b  ',
    '\n',
    '\t a\n\nb ',
    '🙂🙂 🙂',
    'abcabcabcabc'.repeat(20),
  ];
  for (let i = 0; i < count; i++) {
    let s = '';
    const len = 1 + Math.floor(next() * 30);
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
    texts.push(s);
  }
  return texts;
}

/** Random pieces over 'abc' and, when `leadingMarks`, with a run of '▁' in front. */
function randomPieces(seed: number, count: number, leadingMarks: boolean): string[] {
  const next = rng(seed);
  const pieces = new Set(['a', 'b', 'c', '\u2581', '\n', 'é']);
  while (pieces.size < count) {
    let p = '';
    if (leadingMarks) p += '\u2581'.repeat(Math.floor(next() * 3));
    const len = (p === '' ? 2 : 0) + Math.floor(next() * 4);
    for (let j = 0; j < len; j++) p += 'abc'[Math.floor(next() * 3)];
    if (p.length >= 2) pieces.add(p);
  }
  return [...pieces];
}

describe('SpmEncoder', () => {
  test("gives the reference algorithm's ids, word by word, on random vocabularies", () => {
    for (let seed = 1; seed <= 12; seed++) {
      // Even seeds have pieces like '▁▁ab', which still allow cutting before a '▁' that follows
      // a non-'▁' character; odd seeds only have '▁' at position 0.
      const vocab = vocabOf(randomPieces(seed, 40, seed % 2 === 0), seed, seed % 3 !== 0);
      const encoder = new SpmEncoder(vocab);
      const uncached = new SpmEncoder(vocab, { cacheSize: 0 });
      assert.equal(encoder.wordSegmented, true);
      for (const text of randomTexts(seed, 150)) {
        const want = reference(vocab, text);
        assert.deepEqual(encoder.encode(text), want, `seed ${seed}: ${JSON.stringify(text)}`);
        assert.deepEqual(uncached.encode(text), want, `seed ${seed} uncached: ${JSON.stringify(text)}`);
      }
    }
  });

  test("encodes the whole text when a piece has '▁' after another character, with the same ids", () => {
    for (let seed = 1; seed <= 6; seed++) {
      // Pieces that cross a word boundary, so cutting at '▁' would be wrong.
      const pieces = [...randomPieces(seed, 30, false), 'a\u2581', 'b\u2581a', 'c\u2581\u2581b', 'ab\u2581c'];
      const vocab = vocabOf(pieces, seed);
      const encoder = new SpmEncoder(vocab);
      assert.equal(encoder.wordSegmented, false);
      for (const text of randomTexts(seed, 150)) {
        assert.deepEqual(
          encoder.encode(text),
          reference(vocab, text),
          `seed ${seed}: ${JSON.stringify(text)}`,
        );
      }
    }
    // A case where the cut would change the ids: 'a▁' beats 'a' + '▁b'.
    const base = vocabOf(['a', 'b', '\u2581', '\u2581a', '\u2581b', 'a\u2581'], 1);
    const vocab = { ...base, scores: base.texts.map((t) => (t === 'a\u2581' ? 0 : -1)) };
    const ids = (...texts: string[]): number[] => texts.map((t) => vocab.texts.indexOf(t));
    assert.deepEqual(new SpmEncoder(vocab).encode('a b'), reference(vocab, 'a b'));
    assert.deepEqual(reference({ ...vocab, addSpacePrefix: false }, 'a b'), ids('a\u2581', 'b'));
    assert.deepEqual(new SpmEncoder({ ...vocab, addSpacePrefix: false }).encode('a b'), ids('a\u2581', 'b'));
  });

  test('the word cache does not change results, and returned arrays are the caller’s', () => {
    const vocab = vocabOf(randomPieces(5, 40, false), 5);
    const encoder = new SpmEncoder(vocab, { cacheSize: 3 });
    const texts = randomTexts(5, 200);
    for (let round = 0; round < 2; round++) {
      for (const text of texts) {
        const got = encoder.encode(text);
        assert.deepEqual(got, reference(vocab, text), JSON.stringify(text));
        // Callers may mutate what they get back; the next call must not see it.
        got.fill(-1);
        got.push(-1);
        assert.deepEqual(encoder.encode(text), reference(vocab, text), JSON.stringify(text));
      }
    }
    assert.notEqual(encoder.encode('ab ab'), encoder.encode('ab ab'));
  });

  test('long words and lone surrogates', () => {
    const vocab = vocabOf(randomPieces(9, 40, false), 9);
    const encoder = new SpmEncoder(vocab);
    const long = Array.from({ length: 5000 }, (_, i) => 'abcé🙂'[(i * 7) % 5]).join('');
    assert.deepEqual(encoder.encode(long), reference(vocab, long));
    assert.deepEqual(encoder.encode(`${long} ${long}`), reference(vocab, `${long} ${long}`));
    // Ill-formed UTF-16 becomes U+FFFD's bytes, as TextEncoder does (LlamaTokenizer sends such
    // text to llama.cpp instead).
    assert.deepEqual(encoder.encode('a\ud800b'), reference(vocab, 'a\ud800b'));
  });
});
