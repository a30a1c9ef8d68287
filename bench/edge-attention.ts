/**
 * npm run bench:edge [-- --tokens N --rounds N --windows N --streams N]
 * The edge tier's attention kernel, measured: every GGUF variant of the family decoded greedily by
 * node-llama-cpp with llama.cpp's flash-attention kernel on and off, side by side in one run
 * (alternating rounds, medians): one stream, and --streams concurrent streams on one context (how
 * the edge tier serves concurrent requests: llama.cpp batches a context's sequences in each step),
 * with the validation perplexity of each and whether both produce the same greedy tokens. This is
 * the measurement behind the tier's `flashAttention: false` default (docs/gateway.md, "Edge tier
 * options").
 */
import { parseArgs } from 'node:util';
import type { LlamaContext, LlamaContextSequence, Token } from 'node-llama-cpp';
import { readEvalSlice, readGolden, readManifest, variantPath } from '../models/ts/family.js';
import { GgufRunner, sharedLlama } from '../models/ts/gguf-runner.js';
import { ggufPerplexity } from '../models/ts/perplexity.js';
import { median } from './lib/median.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '7' },
    windows: { type: 'string', default: '4' },
    streams: { type: 'string', default: '8' },
  },
});
const STREAMS = Number(values.streams);
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const golden = readGolden();
const windows = readEvalSlice().windows.slice(0, Number(values.windows));
const prompt = golden.prompts[0]?.ids ?? [golden.bos_id];

/** Tokens/s of one greedy decode of TOKENS tokens. */
async function speed(runner: GgufRunner): Promise<number> {
  const t = performance.now();
  const n = await runner.decodeSpeed(prompt, TOKENS);
  return (n * 1000) / (performance.now() - t);
}

/**
 * Total tokens/s of STREAMS greedy decodes of TOKENS tokens each, run at once on one context's
 * sequences (reused and cleared between runs, as the edge tier's sequence pool does).
 */
async function batchedSpeed(sequences: readonly LlamaContextSequence[]): Promise<number> {
  await Promise.all(sequences.map((seq) => seq.clearHistory()));
  const t = performance.now();
  const counts = await Promise.all(
    sequences.map(async (seq) => {
      let n = 0;
      for await (const _token of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
        if (++n >= TOKENS) break;
      }
      return n;
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

const llama = await sharedLlama();
const rows: string[][] = [];
for (const v of readManifest().variants.filter((x) => x.format === 'gguf')) {
  process.stderr.write(`bench:edge — ${v.id}: loading both contexts...\n`);
  const on = await GgufRunner.load(variantPath(v), { flashAttention: true });
  const off = await GgufRunner.load(variantPath(v), { flashAttention: false });
  const same =
    JSON.stringify(await on.decode(prompt, TOKENS)) === JSON.stringify(await off.decode(prompt, TOKENS));
  const tps = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so drift in the machine's load hits both alike.
    const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) tps[which].push(await speed(which === 'on' ? on : off));
    process.stderr.write(`  round ${r + 1}/${ROUNDS}\n`);
  }
  const model = await llama.loadModel({ modelPath: variantPath(v) });
  const contexts = {
    on: await model.createContext({ sequences: STREAMS, threads: 1, flashAttention: true }),
    off: await model.createContext({ sequences: STREAMS, threads: 1, flashAttention: false }),
  };
  const all = (context: LlamaContext): LlamaContextSequence[] =>
    Array.from({ length: STREAMS }, () => context.getSequence());
  const sequences = { on: all(contexts.on), off: all(contexts.off) };
  const batched = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const which of order) batched[which].push(await batchedSpeed(sequences[which]));
    process.stderr.write(`  ${STREAMS} streams, round ${r + 1}/${ROUNDS}\n`);
  }
  await contexts.on.dispose();
  await contexts.off.dispose();
  await model.dispose();
  const pplOn = (await ggufPerplexity(on, windows, golden.vocab_size)).perplexity;
  const pplOff = (await ggufPerplexity(off, windows, golden.vocab_size)).perplexity;
  await on.dispose();
  await off.dispose();
  const [a, b] = [median(tps.on), median(tps.off)];
  const [c, d] = [median(batched.on), median(batched.off)];
  rows.push([
    v.id,
    a.toFixed(0),
    b.toFixed(0),
    (b / a).toFixed(2),
    c.toFixed(0),
    d.toFixed(0),
    (d / c).toFixed(2),
    pplOn.toFixed(3),
    pplOff.toFixed(3),
    same ? 'yes' : 'no',
  ]);
}

const tokenCount = windows.reduce((n, w) => n + w.length - 1, 0);
process.stdout.write(
  `bench:edge — greedy decode of ${TOKENS} tokens per stream (1 stream, then ${STREAMS} at once on one context), 1 thread, medians of ${ROUNDS} alternating rounds; ` +
    `perplexity on ${tokenCount} validation tokens\n\n`,
);
const header = [
  'variant',
  'tok/s flash attn',
  'tok/s plain attn',
  'x plain/flash',
  `tok/s ×${STREAMS} flash`,
  `tok/s ×${STREAMS} plain`,
  `x plain/flash ×${STREAMS}`,
  'ppl flash',
  'ppl plain',
  'same greedy tokens',
];
process.stdout.write(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n`);
for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
