/**
 * node --import tsx bench/gc-pipeline.ts — how much of the request pipeline survives V8's
 * young-generation collections: the pipeline (resilience executor, choice generator, metrics)
 * runs on the echo tier in process, one request after another, for a few seconds, in a child
 * started with `--trace-gc-nvp --max-semi-space-size=64` (a large young generation makes any
 * retention visible). With nothing in flight between requests, survivors per scavenge should be
 * near zero; objects kept alive by the engine (e.g. object spreads of per-request objects, or
 * WeakMaps keyed by requests) show up here as hundreds of KB.
 *
 * Options (env): BENCH_SECONDS (6).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROOT = fileURLToPath(new URL('../', import.meta.url));

async function runPipeline(): Promise<void> {
  const { buildConfig } = await import('../src/config/index.js');
  const { createLogger } = await import('../src/observability/logger.js');
  const { Gateway } = await import('../src/gateway/gateway.js');
  const { MetricsService } = await import('../src/observability/metrics.js');
  const { execute } = await import('../src/pipeline/execute.js');
  const { ResilientGeneration, newExecutionRecord } = await import('../src/resilience/executor.js');
  const { Cancellation } = await import('../src/tiers/cancellation.js');
  const { encodePrompt } = await import('../src/text/tokenizer.js');
  const config = buildConfig(
    {
      logging: { level: 'silent' },
      family: { dir: 'models/tiny' },
      tiers: { echo: { kind: 'echo' } },
      models: { 'tiergate-echo': { tier: 'echo' } },
    },
    { baseDir: ROOT, env: {} },
  );
  const gateway = await Gateway.start(config, createLogger('silent'), new MetricsService());
  const tokenizer = gateway.tokenizer;
  const end = performance.now() + SECONDS * 1000;
  let requests = 0;
  while (performance.now() < end) {
    const gen = {
      requestId: 'bench',
      model: 'tiergate-echo',
      tier: 'echo',
      promptTokens: encodePrompt(tokenizer, 'The county grand jury said Friday'),
      maxTokens: 16,
      sampling: { temperature: 1, topP: 1, topK: 0 },
      stop: [],
      n: 1,
      logprobs: false,
      topLogprobs: 0,
      arrivedAt: performance.now(),
    };
    const resilient = new ResilientGeneration(
      gateway.resilience,
      gateway.resilience.defaultAttempts('echo'),
      newExecutionRecord(),
    );
    const summary = { completionTokens: 0, ttftMs: undefined, aborted: false };
    const events = execute(resilient, tokenizer, gateway.metrics, gen, new Cancellation(), summary, (o) =>
      gateway.router.observe('echo', o),
    );
    for await (const event of events) void event;
    requests++;
  }
  process.stderr.write(`REQUESTS ${requests}\n`);
  await gateway.close();
}

function main(): void {
  const out = execFileSync(
    process.execPath,
    [
      '--trace-gc-nvp',
      '--max-semi-space-size=64',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--child',
    ],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Lines start with [pid:isolate]: tsx's module loader runs in its own thread (isolate), so
  // keep the isolate with the most scavenges (the pipeline's), and skip its start-up ones.
  const lines = out.split('\n').filter((line) => line.includes(' gc=s '));
  const isolateOf = (line: string): string => /^\[[^\]]*\]/.exec(line)?.[0] ?? '';
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(isolateOf(line), (counts.get(isolateOf(line)) ?? 0) + 1);
  const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const scavenges = lines
    .filter((line) => isolateOf(line) === main)
    .map((line) => ({
      pause: Number(/ pause=([\d.]+)/.exec(line)?.[1]),
      survived: Number(/ new_space_survived=(\d+)/.exec(line)?.[1]),
    }))
    .slice(10);
  if (scavenges.length === 0) throw new Error('no scavenges seen: run longer (BENCH_SECONDS)');
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(
    `pipeline on the echo tier, in process, ${SECONDS} s: ${scavenges.length} scavenges, ` +
      `mean ${(mean(scavenges.map((s) => s.survived)) / 1024).toFixed(1)} KB surviving each, ` +
      `mean pause ${mean(scavenges.map((s) => s.pause)).toFixed(2)} ms`,
  );
}

if (process.argv.includes('--child')) await runPipeline();
else main();
