/**
 * npm run bench:cascade — the cascade strategy (docs/cascade.md) against always-edge and
 * always-main on the family's evaluation text: accuracy against cost, for both confidence rules
 * (the probe's mean logprob, thresholds --means; its smallest top-1/top-2 margin, --margins).
 *
 *   npm run bench:cascade -- [--family models/small] [--prompts 48] [--tokens 32]
 *     [--probe 8] [--means -2,-2.5,-3] [--margins 0.01,0.025,0.05,0.1]
 *
 * `edge` serves the family's Q4_K_M GGUF (llama.cpp), `main` its ONNX FP32 export. Prompts are
 * slices of the family's evaluation windows (eval-slice.json, text the model was not trained on),
 * answered greedily. Accuracy is measured against the FP32 tier, the project's reference
 * (docs/models.md): the share of answers identical to main's, and the mean share of each answer's
 * tokens before its first difference from main's. Cost is the router's (prompt + generated
 * tokens) / 1000 x the tier's price (edge 1, main 4, as bench:slo), counting a cascade's
 * discarded probe on edge too; it is printed relative to always-main. Every variant answers
 * every prompt, one request at a time.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildConfig } from '../src/config/index.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer } from '../src/server.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    family: { type: 'string', default: 'models/small' },
    prompts: { type: 'string', default: '48' },
    tokens: { type: 'string', default: '32' },
    probe: { type: 'string', default: '8' },
    means: { type: 'string', default: '-2,-2.5,-3' },
    margins: { type: 'string', default: '0.01,0.025,0.05,0.1' },
  },
});
const TOKENS = Number(values.tokens);
const PROBE = Number(values.probe);
const list = (v: string): number[] => (v === '' ? [] : v.split(',').map(Number));
const RULES: { name: string; policy: string; option: Record<string, number> }[] = [
  ...list(values.means).map((t) => ({
    name: `cascade, mean logprob >= ${t}`,
    policy: `mean${t}`,
    option: { minMeanLogprob: t },
  })),
  ...list(values.margins).map((t) => ({
    name: `cascade, margin >= ${t}`,
    policy: `margin${t}`,
    option: { minMargin: t },
  })),
];
const PRICE: Record<string, number> = { edge: 1, main: 4 };
const MODEL = 'bench';

const slice = JSON.parse(readFileSync(join(ROOT, values.family, 'eval-slice.json'), 'utf8')) as {
  windows: number[][];
};
const prompts: number[][] = [];
for (let i = 0; prompts.length < Number(values.prompts); i++) {
  const w = slice.windows[i % slice.windows.length]!;
  const at = 1 + ((Math.floor(i / slice.windows.length) * 61 + i * 7) % Math.max(1, w.length - 40));
  prompts.push([1, ...w.slice(at, at + 12 + (i % 13))]);
}

const policies: Record<string, unknown> = {};
for (const r of RULES)
  policies[r.policy] = {
    tiers: ['main'],
    cascade: { first: 'edge', then: 'main', ...r.option, probeTokens: PROBE },
  };
const config = buildConfig(
  {
    server: { port: 0 },
    logging: { level: 'warn' },
    family: { dir: values.family },
    tiers: {
      edge: { kind: 'llamacpp', model: 'gguf-q4_k_m', threads: 1, sequences: 1 },
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, maxBatchSize: 1 },
    },
    models: { [MODEL]: { tier: 'main' } },
    routing: { policies },
  },
  { baseDir: ROOT, env: {} },
);

interface Answer {
  readonly tokens: string[];
  readonly servedBy: string;
  readonly promptTokens: number;
  readonly ms: number;
}

const server = await startServer(config, createLogger('warn'));
async function ask(prompt: number[], headers: Record<string, string>): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: TOKENS, temperature: 0, logprobs: 0 }),
  });
  const body = (await res.json()) as {
    choices?: { logprobs?: { tokens: string[] } }[];
    usage?: { prompt_tokens: number };
  };
  if (res.status !== 200) throw new Error(`status ${res.status}: ${JSON.stringify(body)}`);
  return {
    tokens: body.choices?.[0]?.logprobs?.tokens ?? [],
    servedBy: res.headers.get('x-tiergate-served-by') ?? res.headers.get('x-tiergate-tier') ?? '?',
    promptTokens: body.usage?.prompt_tokens ?? prompt.length,
    ms: performance.now() - t0,
  };
}

async function discarded(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tiergate_cascade_discarded_tokens_total{'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

try {
  console.log(
    `# bench:cascade ${new Date().toISOString()} family ${values.family}: ${prompts.length} prompts from eval-slice.json, ${TOKENS} tokens, greedy; probe ${PROBE} tokens; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // Warm-up: both tiers' first requests pay for allocation.
  for (const tier of ['edge', 'main']) await ask(prompts[0]!, { 'x-tiergate-tier': tier });
  const variants: [string, Record<string, string>][] = [
    ['always main (onnx-fp32)', { 'x-tiergate-tier': 'main' }],
    ['always edge (gguf-q4_k_m)', { 'x-tiergate-tier': 'edge' }],
    ...RULES.map((r): [string, Record<string, string>] => [r.name, { 'x-tiergate-policy': r.policy }]),
  ];
  const pct = (x: number): string => `${((x / prompts.length) * 100).toFixed(1)}%`;
  let reference: Answer[] = [];
  let mainCost = 0;
  console.log(
    '| variant | answered by edge | identical to main | tokens agreeing before the first difference | cost vs always-main | random split at that cost: identical | mean latency ms |',
  );
  console.log('|---|---|---|---|---|---|---|');
  let edgeRow: { identical: number; cost: number } | undefined;
  for (const [name, headers] of variants) {
    const before = await discarded();
    const answers: Answer[] = [];
    for (const [i, p] of prompts.entries()) {
      answers.push(await ask(p, headers));
      if ((i + 1) % 16 === 0) process.stderr.write(`${name}: ${i + 1}/${prompts.length}\n`);
    }
    if (reference.length === 0) reference = answers;
    let identical = 0;
    let agreeing = 0;
    let cost = 0;
    let byEdge = 0;
    for (const [i, a] of answers.entries()) {
      const ref = reference[i]!.tokens;
      let same = 0;
      while (same < ref.length && same < a.tokens.length && ref[same] === a.tokens[same]) same++;
      if (same === ref.length && a.tokens.length === ref.length) identical++;
      agreeing += ref.length === 0 ? 1 : same / ref.length;
      const tier = a.servedBy.split(',').at(-1)!.trim();
      if (tier === 'edge') byEdge++;
      cost += ((a.promptTokens + a.tokens.length) / 1000) * (PRICE[tier] ?? 0);
    }
    // An escalated request also paid for its prompt and probe on edge.
    const probes = (await discarded()) - before;
    const escalated =
      headers['x-tiergate-policy'] === undefined ? [] : answers.filter((a) => a.servedBy !== 'edge');
    for (const a of escalated) cost += (a.promptTokens / 1000) * PRICE.edge!;
    cost += (probes / 1000) * PRICE.edge!;
    if (mainCost === 0) mainCost = cost;
    const relative = cost / mainCost;
    if (headers['x-tiergate-tier'] === 'edge') edgeRow = { identical, cost: relative };
    // The baseline a cascade must beat: sending a random share of requests to main, the rest to
    // edge, for the same cost (always-main is identical by definition).
    let split = '';
    if (edgeRow !== undefined && headers['x-tiergate-policy'] !== undefined) {
      const m = Math.min(1, Math.max(0, (relative - edgeRow.cost) / (1 - edgeRow.cost)));
      split = pct(m * answers.length + (1 - m) * edgeRow.identical);
    }
    console.log(
      `| ${name} | ${byEdge}/${answers.length} | ${pct(identical)} | ${pct(agreeing)} | ${relative.toFixed(2)} | ${split} | ${(answers.reduce((s, a) => s + a.ms, 0) / answers.length).toFixed(0)} |`,
    );
  }
} finally {
  await server.shutdown();
}
