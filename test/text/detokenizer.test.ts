import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ByteTokenizer } from '../../src/text/byte-tokenizer.js';
import { IncrementalDetokenizer } from '../../src/text/detokenizer.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { encodePrompt, type Tokenizer } from '../../src/text/tokenizer.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';
import { createRng } from '../../src/text/sampling.js';
import { withoutTokenBytes } from '../helpers/window-tokenizer.js';

/**
 * The window algorithm as it was before the byte path (two detokenize calls per token), kept as
 * the reference the byte path must reproduce delta for delta.
 */
class ReferenceDetokenizer {
  private readonly tokens: number[];
  private prefixOffset = 0;
  private readOffset: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    promptTail: readonly number[],
  ) {
    this.tokens = promptTail.slice(-4);
    this.readOffset = this.tokens.length;
  }

  push(token: number): string {
    this.tokens.push(token);
    const prefix = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset));
    if (text.length <= prefix.length || text.endsWith('\uFFFD')) return '';
    const delta = text.slice(prefix.length);
    this.prefixOffset = Math.max(0, this.tokens.length - 4);
    this.readOffset = this.tokens.length;
    return delta;
  }

  flush(): string {
    const prefix = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.detokenize(this.tokens.slice(this.prefixOffset));
    return text.length > prefix.length ? text.slice(prefix.length) : '';
  }
}

function stream(tokenizer: Tokenizer, prompt: readonly number[], tokens: readonly number[]): string[] {
  const d = new IncrementalDetokenizer(tokenizer, prompt);
  const deltas = tokens.map((t) => d.push(t));
  deltas.push(d.flush());
  return deltas;
}

function referenceStream(
  tokenizer: Tokenizer,
  prompt: readonly number[],
  tokens: readonly number[],
): string[] {
  const d = new ReferenceDetokenizer(tokenizer, prompt);
  const deltas = tokens.map((t) => d.push(t));
  deltas.push(d.flush());
  return deltas;
}

/** Seeded numbers from the gateway's own sampler RNG, so failures reproduce. */
function rng(seed: number): () => number {
  const r = createRng(seed);
  return () => r.next();
}

/** No delta but the last may end inside a character (a lone high surrogate or a held U+FFFD). */
function assertWholeCharacters(deltas: readonly string[], label: string): void {
  deltas.slice(0, -1).forEach((d, i) => {
    const last = d.charCodeAt(d.length - 1);
    assert.ok(!(last >= 0xd800 && last <= 0xdbff), `${label}: delta ${i} ends in a lone high surrogate`);
    assert.notEqual(last, 0xfffd, `${label}: delta ${i} ends with U+FFFD`);
  });
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

test('byte tokenizer: random bytes (valid and not) give the reference deltas', () => {
  const bytes = new ByteTokenizer();
  const random = rng(7);
  for (let n = 0; n < 300; n++) {
    const tokens = Array.from({ length: 1 + Math.floor(random() * 40) }, () =>
      Math.floor(random() * bytes.vocabSize),
    );
    const prompt = n % 3 === 0 ? [] : [bytes.bos];
    const deltas = stream(bytes, prompt, tokens);
    assert.deepEqual(deltas, referenceStream(bytes, prompt, tokens), JSON.stringify({ prompt, tokens }));
    assert.equal(deltas.join(''), bytes.detokenize(tokens));
    assertWholeCharacters(deltas, JSON.stringify(tokens));
  }
});

describe('with the family tokenizer (vocab-only llama.cpp load)', () => {
  let tokenizer: LlamaTokenizer;
  /** byteToken[b]: the id of the byte-fallback token <0xBB>. */
  const byteToken: number[] = [];
  /** Ids that print nothing (BOS, EOS, unknown…). */
  const silent: number[] = [];
  /** Ids of normal tokens (whole UTF-8 text). */
  const normal: number[] = [];

  before(async () => {
    tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
    // A one-byte piece above 0x7F can only be a byte token; SentencePiece lays out <0x00>..<0xFF>
    // as one run of ids, so <0x80>'s id locates the ASCII ones too (checked below).
    let base = -1;
    for (let id = 0; id < tokenizer.vocabSize && base < 0; id++) {
      const piece = tokenizer.tokenBytes(id, false)!;
      if (piece.length === 1 && piece[0] === 0x80) base = id - 0x80;
    }
    for (let b = 0; b < 256; b++) {
      assert.deepEqual(tokenizer.tokenBytes(base + b, false), Uint8Array.of(b));
      byteToken[b] = base + b;
    }
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      const piece = tokenizer.tokenBytes(id, false)!;
      if (piece.length === 0) silent.push(id);
      else if (id < base || id >= base + 256) normal.push(id);
    }
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

  test('the JS codec exposes token bytes (else the byte path is not under test)', () => {
    assert.ok(tokenizer.usesJsCodec);
    assert.ok(normal.length > 100 && silent.length >= 1);
    // SentencePiece byte-fallback vocabularies have all 256 byte tokens.
    for (const b of [0x20, 0x80, 0xbf, 0xe6, 0xf0, 0xff]) assert.ok(byteToken[b] !== undefined, `<0x${b}>`);
  });

  /** A random generation: normal tokens, characters spelled in byte tokens, silent tokens, junk. */
  function generation(random: () => number, invalid: boolean): number[] {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const chars = ['é', 'ß', '日', '本', '—', '🙂', '𝄞', '\uFFFD', '\uFEFF', ' ', 'a'];
    const out: number[] = [];
    const length = 1 + Math.floor(random() * 60);
    while (out.length < length) {
      const r = random();
      if (r < 0.45) out.push(pick(normal));
      else if (r < 0.75) {
        // A character as byte tokens, sometimes with silent tokens between its bytes.
        for (const b of new TextEncoder().encode(pick(chars))) {
          out.push(byteToken[b]!);
          if (random() < 0.1) out.push(pick(silent));
        }
      } else if (r < 0.85) out.push(pick(silent));
      else if (invalid) out.push(byteToken[0x80 + Math.floor(random() * 0x80)]!);
      else out.push(Math.floor(random() * tokenizer.vocabSize));
    }
    if (!invalid) {
      // Random ids may be lone byte tokens: keep only generations that are valid UTF-8.
      const bytes = Buffer.concat(out.map((t) => tokenizer.tokenBytes(t, false)!));
      if (!isValidUtf8(bytes)) return generation(random, invalid);
    }
    return out;
  }

  function isValidUtf8(bytes: Uint8Array): boolean {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return true;
    } catch {
      return false;
    }
  }

  function prompts(random: () => number): number[][] {
    const bos = tokenizer.bos ?? silent[0]!;
    const long = encodePrompt(
      tokenizer,
      'The county grand jury said Friday an investigation of recent primary elections produced no evidence. '.repeat(
        8,
      ),
    );
    return [
      [],
      [bos],
      [bos, bos, bos, bos, bos],
      encodePrompt(tokenizer, 'Hello'),
      encodePrompt(tokenizer, ' two  spaces, café'),
      long,
      [
        bos,
        ...Array.from(
          { length: 1 + Math.floor(random() * 8) },
          () => normal[Math.floor(random() * normal.length)]!,
        ),
      ],
    ];
  }

  function check(prompt: readonly number[], gen: readonly number[], valid: boolean): void {
    const label = JSON.stringify({ prompt: prompt.slice(-6), gen });
    const deltas = stream(tokenizer, prompt, gen);
    assert.deepEqual(deltas, referenceStream(tokenizer, prompt, gen), label);
    assertWholeCharacters(deltas, label);
    const joined = deltas.join('');
    // The text of the whole, minus the prompt's (the prompts here end on a character boundary).
    const head = tokenizer.detokenize(prompt);
    const whole = tokenizer.detokenize([...prompt, ...gen]);
    const tailSilent = prompt.length > 0 && tokenizer.detokenize(prompt.slice(-4)) === '';
    // A BOM right after a tail that prints nothing is dropped (as the window decode did).
    if (!(tailSilent && head !== '')) {
      assert.ok(whole.startsWith(head), label);
      assert.equal(joined, whole.slice(head.length), label);
    }
    // detokenize(generated, previous) agrees unless the tail's last tokens print nothing (it then
    // strips the first generated space, which the stream never did).
    if (prompt.length === 0 || tokenizer.detokenize(prompt.slice(-3)) !== '') {
      assert.equal(joined, tokenizer.detokenize(gen, prompt), label);
    }
    if (valid && !whole.slice(head.length).includes('\uFFFD')) {
      assert.ok(!joined.includes('\uFFFD'), label);
    }
  }

  test('random valid generations give the reference deltas and the text of the whole', () => {
    const random = rng(1);
    for (let n = 0; n < 60; n++) {
      const gen = generation(random, false);
      for (const prompt of prompts(random)) check(prompt, gen, true);
    }
  });

  test('invalid byte sequences: reference deltas, U+FFFD as in the whole decode', () => {
    const random = rng(2);
    for (let n = 0; n < 60; n++) {
      const gen = generation(random, true);
      for (const prompt of prompts(random)) check(prompt, gen, false);
    }
  });

  test('leading space: dropped only after an empty prompt, and only from the first token', () => {
    const space = byteToken[0x20]!;
    const hi = tokenizer.tokenize('hi');
    const bos = tokenizer.bos ?? silent[0]!;
    // A normal token printing a space and more (e.g. "▁the").
    const word = normal.find((id) => {
      const piece = tokenizer.tokenBytes(id, false)!;
      return piece.length > 1 && piece[0] === 0x20 && piece[1] !== 0x20;
    })!;
    const wordText = new TextDecoder().decode(tokenizer.tokenBytes(word, false));
    for (const gen of [
      [word, ...hi],
      [space, ...hi],
      [bos, space, ...hi],
      [byteToken[0xe6]!, byteToken[0x97]!, byteToken[0xa5]!, space, ...hi],
    ]) {
      for (const prompt of [[], [bos], encodePrompt(tokenizer, 'x')]) {
        assert.deepEqual(stream(tokenizer, prompt, gen), referenceStream(tokenizer, prompt, gen));
      }
    }
    // With add_space_prefix, 'hi' tokenises as "▁h" "i": one space goes, and only the first.
    assert.equal(stream(tokenizer, [], hi).join(''), 'hi');
    assert.equal(stream(tokenizer, [], [space, ...hi]).join(''), ' hi');
    assert.equal(stream(tokenizer, [], [word]).join(''), wordText.slice(1));
    assert.equal(stream(tokenizer, [bos], [space, ...hi]).join(''), '  hi');
    // llama.cpp clears the strip flag after the first token even when it prints nothing.
    assert.equal(stream(tokenizer, [], [bos, space, ...hi]).join(''), '  hi');
  });

  test('a BOM at the start is dropped exactly when the window decode dropped it', () => {
    const bom = [0xef, 0xbb, 0xbf].map((b) => byteToken[b]!);
    const bos = tokenizer.bos ?? silent[0]!;
    const gen = [...bom, ...tokenizer.tokenize('a'), ...bom];
    for (const prompt of [
      [],
      [bos],
      [bos, bos, bos, bos, bos],
      encodePrompt(tokenizer, 'x'),
      [...encodePrompt(tokenizer, 'x'), bos, bos, bos, bos],
      // A tail that prints only the space its first token loses counts as printing nothing.
      [byteToken[0x20]!],
      [byteToken[0x20]!, bos],
    ]) {
      assert.deepEqual(
        stream(tokenizer, prompt, gen),
        referenceStream(tokenizer, prompt, gen),
        JSON.stringify(prompt),
      );
    }
  });

  test('a prompt ending inside a character: generated bytes decode on their own', () => {
    // The window decode mangled this case; the byte path follows detokenize(generated, previous).
    const prompt = [...encodePrompt(tokenizer, 'x'), byteToken[0xe6]!];
    const gen = [byteToken[0x97]!, byteToken[0xa5]!, ...tokenizer.tokenize('ok')];
    assert.equal(stream(tokenizer, prompt, gen).join(''), tokenizer.detokenize(gen, prompt));
  });

  test('without tokenBytes the window path is kept', () => {
    const plain = withoutTokenBytes(tokenizer);
    const random = rng(3);
    for (let n = 0; n < 20; n++) {
      const gen = generation(random, n % 2 === 0);
      const prompt = n % 4 === 0 ? [] : encodePrompt(tokenizer, 'Once');
      assert.deepEqual(stream(plain, prompt, gen), referenceStream(tokenizer, prompt, gen));
    }
  });
});
