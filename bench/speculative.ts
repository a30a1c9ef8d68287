/**
 * npm run bench:speculative — single-stream greedy tokens/s of speculative decoding across tiers
 * (docs/speculative.md) beside each verify tier alone, in the same run, through the gateway's
 * HTTP API:
 *
 *   npm run bench:speculative -- [--family models/small] [--tokens 128] [--rounds 3]
 *     [--verifiers f32,main,fallback] [--ks 2,4,6,8] [--threads 1] [--lookahead]
 *
 * The draft tier is `edge` (llama.cpp, the family's Q4_K_M GGUF). Verify tiers: `f32` (llama.cpp
 * on the F32 GGUF), `main` (ONNX Runtime FP32), `fallback` (the PyTorch sidecar, spawned). A verify
 * tier that does not keep sequences (Tier.openSequence) is reported and skipped. Per round and
 * prompt, the verify tier alone and each speculative configuration (fixed k, with lookahead when
 * `--lookahead`; adaptive k from 4 up to the largest k given, without and with lookahead) run one
 * after another, so machine noise hits all; a configuration's rate is decode tokens/s (first
 * token to last, prefill excluded) over the round, its speed-up the median over rounds of its
 * rate ÷ the verify tier's in the same round. Each speculative answer is checked against the verify tier's own (greedy: they must be equal).
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildConfig } from '../src/config/index.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer } from '../src/server.js';
import { speculationMetrics } from '../src/service/speculative/speculation-metrics.js';
import { median } from './lib/median.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    family: { type: 'string', default: 'models/small' },
    tokens: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    prompts: { type: 'string', default: '3' },
    verifiers: { type: 'string', default: 'f32,main,fallback' },
    ks: { type: 'string', default: '2,4,6,8' },
    threads: { type: 'string', default: '1' },
    /** Fixed-k configurations draft ahead while verifying (docs/speculative.md "Lookahead"). */
    lookahead: { type: 'boolean', default: false },
  },
});
const LOOKAHEAD = values.lookahead;
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const THREADS = Number(values.threads);
const KS = values.ks.split(',').map(Number);
const MODEL = 'bench';
const PROMPTS = [
  'The jury said it did not believe that the',
  'In the years after the war, the government of the United States',
  'She looked at the old house and remembered',
  'The committee will meet again next week to discuss the',
].slice(0, Number(values.prompts));

const tierConfigs: Record<string, Record<string, unknown>> = {
  edge: { kind: 'llamacpp', model: 'gguf-q4_k_m', threads: THREADS, sequences: 1 },
  f32: { kind: 'llamacpp', model: 'gguf-f32', threads: THREADS, sequences: 1 },
  main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, intraOpThreads: THREADS, maxBatchSize: 1 },
  fallback: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: THREADS, maxConcurrent: 1 },
};
const verifiers = values.verifiers.split(',').filter((v) => v in tierConfigs && v !== 'edge');

interface Config {
  readonly label: string;
  readonly verifier: string;
  /** Undefined: the verify tier alone (pinned). */
  readonly policy: string | undefined;
}
const policies: Record<string, unknown> = {};
const configs: Config[] = [];
for (const v of verifiers) {
  configs.push({ label: `${v} alone`, verifier: v, policy: undefined });
  for (const k of KS) {
    const name = `${v}-k${k}`;
    policies[name] = {
      tiers: [v],
      speculative: { draft: 'edge', verify: v, k, adaptive: false, lookahead: LOOKAHEAD },
    };
    configs.push({ label: `edge>${v} k=${k}${LOOKAHEAD ? ', lookahead' : ''}`, verifier: v, policy: name });
  }
  for (const lookahead of [false, true]) {
    const name = `${v}-adaptive${lookahead ? '-lookahead' : ''}`;
    policies[name] = {
      tiers: [v],
      speculative: { draft: 'edge', verify: v, k: 4, maxK: Math.max(4, ...KS), adaptive: true, lookahead },
    };
    configs.push({ label: `edge>${v} adaptive${lookahead ? ', lookahead' : ''}`, verifier: v, policy: name });
  }
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
console.log(
  `# bench:speculative family ${values.family}, ${TOKENS} tokens, ${ROUNDS} rounds x ${PROMPTS.length} prompts, threads ${THREADS}`,
);
console.log(`# load average before: ${load()}`);

const config = buildConfig(
  {
    server: { port: 0 },
    logging: { level: 'warn' },
    family: { dir: values.family },
    tiers: Object.fromEntries(['edge', ...verifiers].map((t) => [t, tierConfigs[t]])),
    models: { [MODEL]: { tier: verifiers[0]! } },
    routing: { policies },
  },
  { baseDir: ROOT, env: {} },
);
const server = await startServer(config, createLogger('warn'));
const url = server.url;

const keeps = new Map<string, boolean>();
for (const v of ['edge', ...verifiers]) {
  const ok = server.gateway.tiers.get(v)?.openSequence !== undefined;
  keeps.set(v, ok);
  if (!ok)
    console.log(`# tier "${v}" does not keep sequences (Tier.openSequence): its speculation is skipped`);
}
const runnable = configs.filter(
  (c) => c.policy === undefined || (keeps.get(c.verifier) && keeps.get('edge')),
);

interface Run {
  readonly text: string;
  readonly tokens: number;
  readonly decodeMs: number;
}

async function run(c: Config, prompt: string): Promise<Run> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (c.policy === undefined) headers['x-tiergate-tier'] = c.verifier;
  else headers['x-tiergate-policy'] = c.policy;
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      model: MODEL,
      prompt,
      max_tokens: TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`${c.label}: status ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let first: number | undefined;
  let last = 0;
  let text = '';
  let tokens = 0;
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const chunk = JSON.parse(line.slice(6)) as {
        choices?: { text: string }[];
        usage?: { completion_tokens: number } | null;
      };
      const t = chunk.choices?.[0]?.text;
      if (t !== undefined && t.length > 0) {
        const now = performance.now();
        first ??= now;
        last = now;
        text += t;
      }
      if (chunk.usage != null) tokens = chunk.usage.completion_tokens;
    }
  }
  return { text, tokens, decodeMs: first === undefined ? 0 : last - first };
}

async function draftCounts(): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^tiergate_speculative_draft_tokens_total\{pair="([^"]+)",result="(\w+)"\} (\S+)$/.exec(line);
    if (m !== null) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  }
  return out;
}

// Warm-up: every configuration once (models paged in, latency models seeded).
for (const c of runnable) await run(c, PROMPTS[0]!);

const rates = new Map<string, number[]>(runnable.map((c) => [c.label, []]));
const ratios = new Map<string, number[]>(runnable.map((c) => [c.label, []]));
const proposed = new Map<string, number>();
const accepted = new Map<string, number>();
let mismatches = 0;
for (let round = 0; round < ROUNDS; round++) {
  const sums = new Map<string, { tokens: number; ms: number }>(
    runnable.map((c) => [c.label, { tokens: 0, ms: 0 }]),
  );
  for (const prompt of PROMPTS) {
    const alone = new Map<string, string>();
    for (const c of runnable) {
      const before = c.policy === undefined ? undefined : await draftCounts();
      const r = await run(c, prompt);
      if (c.policy === undefined) alone.set(c.verifier, r.text);
      else if (r.text !== alone.get(c.verifier)) mismatches++;
      if (before !== undefined) {
        const after = await draftCounts();
        const pair = `edge>${c.verifier}`;
        const d = (k: string): number => (after.get(`${pair}/${k}`) ?? 0) - (before.get(`${pair}/${k}`) ?? 0);
        proposed.set(c.label, (proposed.get(c.label) ?? 0) + d('proposed'));
        accepted.set(c.label, (accepted.get(c.label) ?? 0) + d('accepted'));
      }
      const s = sums.get(c.label)!;
      s.tokens += Math.max(0, r.tokens - 1);
      s.ms += r.decodeMs;
    }
  }
  for (const c of runnable) {
    const s = sums.get(c.label)!;
    const rate = (1000 * s.tokens) / s.ms;
    rates.get(c.label)!.push(rate);
    const base = sums.get(`${c.verifier} alone`)!;
    ratios.get(c.label)!.push(rate / ((1000 * base.tokens) / base.ms));
  }
  console.log(`# round ${round + 1}/${ROUNDS} done (load average ${load()})`);
}

console.log('');
console.log(
  '| configuration | decode tokens/s (median) | speed-up vs verify tier alone (median of rounds) | draft acceptance |',
);
console.log('|---|---|---|---|');
for (const v of verifiers) {
  let best: { label: string; ratio: number } | undefined;
  for (const c of runnable.filter((x) => x.verifier === v)) {
    const ratio = median(ratios.get(c.label)!);
    const p = proposed.get(c.label) ?? 0;
    const acc =
      c.policy === undefined
        ? '-'
        : p > 0
          ? `${((100 * (accepted.get(c.label) ?? 0)) / p).toFixed(1)}%`
          : 'n/a';
    console.log(`| ${c.label} | ${median(rates.get(c.label)!).toFixed(1)} | ${ratio.toFixed(2)}x | ${acc} |`);
    if (c.policy !== undefined && (best === undefined || ratio > best.ratio))
      best = { label: c.label, ratio };
  }
  if (best !== undefined) console.log(`| best for ${v} | | ${best.ratio.toFixed(2)}x (${best.label}) | |`);
}
console.log('');
// What each pair measured over the whole run (all its configurations), the costs adaptive k
// chooses with (src/service/speculative/adaptive-k.ts): where a step's time goes.
const spec = speculationMetrics(server.gateway.metrics);
for (const v of verifiers) {
  if (!keeps.get(v)) continue;
  const stats = spec.pair(`edge>${v}`);
  const costs = stats.costs();
  if (costs === undefined) continue;
  const at = [1, 5, 9, 13].map((n) => `${n}: ${costs.verifyMs(n).toFixed(1)}`).join(', ');
  console.log(
    `# edge>${v}: draft ${stats.draftMsPerToken?.toFixed(2)} ms/token; verify ms by positions ${at}; acceptance ${stats.acceptance.toFixed(3)}`,
  );
}
console.log(`# greedy answers differing from the verify tier alone: ${mismatches}`);
console.log(`# load average after: ${load()}`);
await server.shutdown();
