/**
 * npm run bench:edge-batching — where llama.cpp's batching across sequences goes (docs/gateway.md
 * "Edge batching"). Same GGUF, same run, one thread, greedy, for 1…N sequences:
 *
 * - ggml rows: k tokens of ONE sequence evaluated in one call vs k one-token calls: what ggml's
 *   CPU matmuls gain from k rows per weight read (the ceiling any batching can reach);
 * - lockstep: k sequences of one context, each step one `controlledEvaluate` per sequence issued
 *   together, so node-llama-cpp dispatches one k-token batch per step;
 * - generators: k sequences each running node-llama-cpp's own `evaluate` loop concurrently (what a
 *   naive multi-sequence server does);
 * - the edge tier itself at k concurrent streams.
 *
 *   npm run bench:edge-batching -- [--family models/small] [--variants gguf-f32,gguf-q4_k_m]
 *                                  [--levels 1,2,4,8] [--tokens 64] [--rounds 3]
 *
 * Every figure is aggregate tokens/s ÷ the same method's single sequence, median of the rounds
 * (rounds interleave the methods, so machine noise hits them alike).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { sharedLlama } from '../models/ts/gguf-runner.js';
import { loadModelFamily, resolveVariant } from '../src/family/manifest.js';
import { LlamaTokenizer } from '../src/text/llama-tokenizer.js';
import { encodePrompt } from '../src/text/tokenizer.js';
import { median } from './lib/median.js';
import { aggregate } from './tiers/measure.js';
import { runner as llamaRunner } from './tiers/llamacpp.js';

const { values } = parseArgs({
  options: {
    family: { type: 'string', default: fileURLToPath(new URL('../models/small', import.meta.url)) },
    variants: { type: 'string', default: 'gguf-f32,gguf-q4_k_m' },
    levels: { type: 'string', default: '1,2,4,8' },
    tokens: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const LEVELS = values.levels.split(',').map(Number);
const TOP = Math.max(...LEVELS);
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const family = loadModelFamily(values.family);
const tokenizer = await LlamaTokenizer.load(resolveVariant(family, 'gguf-f32', '.gguf').file);
const prompt = encodePrompt(tokenizer, 'The government of the United States') as Token[];
const GREEDY = { generateNext: { token: true } } as const;

type Method = 'ggml rows' | 'lockstep' | 'generators' | 'edge tier';
const METHODS: readonly Method[] = ['ggml rows', 'lockstep', 'generators', 'edge tier'];

/** Tokens/s of k rows of one sequence per call (prefill-shaped) — k = 1 is one-token calls. */
async function ggmlRows(seq: LlamaContextSequence, k: number): Promise<number> {
  const extra = Array.from({ length: TOKENS }, (_, i) => prompt[(i % (prompt.length - 1)) + 1] as Token);
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const t0 = performance.now();
  for (let i = 0; i < extra.length; i += k)
    await seq.evaluateWithoutGeneratingNewTokens(extra.slice(i, i + k));
  return (extra.length * 1000) / (performance.now() - t0);
}

/** k sequences advanced together: each step issues every sequence's one-token evaluation at once. */
async function lockstep(seqs: readonly LlamaContextSequence[]): Promise<number> {
  await Promise.all(seqs.map((s) => s.clearHistory()));
  const first = await Promise.all(
    seqs.map((s) => s.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, GREEDY] : t)))),
  );
  let next = first.map((r) => r.at(-1)?.next.token as Token);
  const t0 = performance.now();
  for (let i = 1; i < TOKENS; i++) {
    const res = await Promise.all(seqs.map((s, j) => s.controlledEvaluate([[next[j] as Token, GREEDY]])));
    next = res.map((r) => r[0]?.next.token as Token);
  }
  return ((TOKENS - 1) * seqs.length * 1000) / (performance.now() - t0);
}

/** k sequences each in node-llama-cpp's own generation loop, concurrently. */
async function generators(seqs: readonly LlamaContextSequence[]): Promise<number> {
  await Promise.all(seqs.map((s) => s.clearHistory()));
  const t0 = performance.now();
  const counts = await Promise.all(
    seqs.map(async (s) => {
      let n = 0;
      for await (const _t of s.evaluate(prompt, { temperature: 0, yieldEogToken: true }))
        if (++n >= TOKENS) break;
      return n;
    }),
  );
  return (counts.reduce((a, b) => a + b, 0) * 1000) / (performance.now() - t0);
}

async function measureVariant(variant: string): Promise<string[]> {
  const llama = await sharedLlama();
  const model: LlamaModel = await llama.loadModel({
    modelPath: resolveVariant(family, variant, '.gguf').file,
  });
  const ctxSize = 512;
  const one: LlamaContext = await model.createContext({
    contextSize: ctxSize,
    sequences: 1,
    threads: 1,
    flashAttention: false,
  });
  const many: LlamaContext = await model.createContext({
    contextSize: ctxSize,
    sequences: TOP,
    threads: 1,
    flashAttention: false,
  });
  const single = one.getSequence();
  const seqs = Array.from({ length: TOP }, () => many.getSequence());
  const tierTarget = llamaRunner
    .targets({ family, tokenizer, maxConcurrency: TOP, threads: 1 })
    .find((t) => t.variant === variant);
  if (tierTarget === undefined) throw new Error(`${variant} not in ${family.dir}`);
  const tier = tierTarget.create();
  await tier.start();
  const results = new Map<string, number[]>();
  const put = (m: Method, k: number, v: number): void => {
    const key = `${m}@${k}`;
    results.set(key, [...(results.get(key) ?? []), v]);
  };
  try {
    await lockstep(seqs.slice(0, 1));
    await aggregate(tier, [prompt], 8, 1);
    for (let r = 0; r < ROUNDS; r++) {
      process.stderr.write(`${variant}: round ${r + 1}/${ROUNDS}\n`);
      for (const k of LEVELS) {
        put('ggml rows', k, await ggmlRows(single, k));
        put('lockstep', k, await lockstep(seqs.slice(0, k)));
        put('generators', k, await generators(seqs.slice(0, k)));
        put('edge tier', k, await aggregate(tier, [prompt], TOKENS, k));
      }
    }
  } finally {
    await tier.close();
    await many.dispose();
    await one.dispose();
    await model.dispose();
  }
  return METHODS.map((m) => {
    const base = results.get(`${m}@1`) ?? [];
    const cells = LEVELS.map((k) => {
      const xs = results.get(`${m}@${k}`) ?? [];
      const ratio = median(xs.map((x, i) => x / (base[i] as number)));
      return `${median(xs).toFixed(0)} (${ratio.toFixed(2)}×)`;
    });
    return `| ${variant} | ${m} | ${cells.join(' | ')} |`;
  });
}

const rows: string[] = [];
try {
  for (const v of values.variants.split(',')) rows.push(...(await measureVariant(v)));
} finally {
  await tokenizer.close();
}
process.stdout.write(
  [
    `## llama.cpp batching: tokens/s (× the same method with 1 sequence), ${TOKENS} tokens, threads 1, median of ${ROUNDS} rounds, ${family.id}`,
    '',
    `| variant | method | ${LEVELS.map((k) => `k=${k}`).join(' | ')} |`,
    `|---|---|${LEVELS.map(() => '---:').join('|')}|`,
    ...rows,
    '',
  ].join('\n'),
);
