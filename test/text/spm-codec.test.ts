import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { SpmDecoder } from '../../src/text/spm-decoder.js';
import { SpmEncoder } from '../../src/text/spm-encoder.js';
import { readSpmVocab } from '../../src/text/spm-vocab.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The pure-JS SentencePiece codec must give exactly llama.cpp's ids and text: compared here with
// node-llama-cpp's own calls on the family's real GGUF vocabulary.
describe('pure-JS SentencePiece codec matches llama.cpp', () => {
  let model: LlamaModel;
  let encoder: SpmEncoder;
  let decoder: SpmDecoder;
  let texts: string[];
  before(async () => {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-q4_k_m.gguf'), vocabOnly: true });
    const vocab = readSpmVocab(model);
    assert.ok(vocab !== undefined, 'the family GGUF has a SentencePiece vocabulary');
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
    const next = rng(7);
    for (let i = 0; i < 300; i++) {
      let s = '';
      const len = 1 + Math.floor(next() * 40);
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
      texts.push(s);
    }
  });
  after(async () => model.dispose());

  test('tokenisation gives llama.cpp ids', () => {
    assert.ok(texts.length > 300);
    for (const text of texts) {
      assert.deepEqual(encoder.encode(text), model.tokenize(text, false), JSON.stringify(text));
    }
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
