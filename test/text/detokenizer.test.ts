import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ByteTokenizer } from '../../src/text/byte-tokenizer.js';
import { IncrementalDetokenizer } from '../../src/text/detokenizer.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { encodePrompt, type Tokenizer } from '../../src/text/tokenizer.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';

function stream(tokenizer: Tokenizer, prompt: readonly number[], tokens: readonly number[]): string[] {
  const d = new IncrementalDetokenizer(tokenizer, prompt);
  const deltas = tokens.map((t) => d.push(t));
  deltas.push(d.flush());
  return deltas;
}

test('multi-byte characters split across tokens never come out half', () => {
  const bytes = new ByteTokenizer();
  const text = 'naïve 日本 🙂!';
  const deltas = stream(bytes, [bytes.bos], bytes.tokenize(text));
  assert.equal(deltas.join(''), text);
  assert.ok(
    deltas.every((d) => !d.includes('\uFFFD')),
    JSON.stringify(deltas),
  );
  // The 4-byte emoji arrives as 3 empty deltas and then the whole character.
  assert.ok(deltas.includes('🙂'));
});

describe('with the family tokenizer (vocab-only llama.cpp load)', () => {
  let tokenizer: LlamaTokenizer;
  before(async () => {
    tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
  });
  after(async () => tokenizer.close());

  test('BOS, stop tokens and vocabulary come from the GGUF', () => {
    const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
      vocab_size?: number;
      bos_id?: number;
    };
    if (golden.vocab_size !== undefined) assert.equal(tokenizer.vocabSize, golden.vocab_size);
    if (golden.bos_id !== undefined) assert.equal(tokenizer.bos, golden.bos_id);
    assert.ok(tokenizer.stopTokens.length >= 1);
  });

  test('deltas of a continuation join to the text of the whole', () => {
    const prompt = encodePrompt(tokenizer, 'The jury said');
    const continuation = tokenizer.tokenize(' it was a "good" election, café — déjà vu. 100% sure');
    const deltas = stream(tokenizer, prompt, continuation);
    const whole = tokenizer.detokenize([...prompt, ...continuation]);
    const head = tokenizer.detokenize(prompt);
    assert.equal(head + deltas.join(''), whole);
    assert.ok(deltas.every((d) => !d.includes('\uFFFD')));
  });
});
