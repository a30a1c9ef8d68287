/**
 * node --import tsx bench/gc-pipeline.ts — how much of a request survives V8's young-generation
 * collections (scavenges). What survives one scavenge is copied, what survives two is promoted
 * to the old generation: both lengthen every scavenge pause (the gateway's p99) and promoted
 * objects pile up until a full GC. With nothing long-lived per request, survivors per scavenge
 * should be near zero.
 *
 * 1. The pipeline in process: the resilience executor, the choice generator and metrics run on
 *    the echo tier, one request after another, in a child started with `--trace-gc-nvp
 *    --max-semi-space-size=64` (a large young generation makes any retention visible). Also
 *    prints the pipeline's own time per request.
 * 2. The real gateway over HTTP (bench/gateway.ts's static echo server on the compiled build:
 *    run `npm run build` first; logging on) under an
 *    open-loop load of BENCH_GC_RATE requests/s, traced the same way with V8's default young
 *    generation. Objects kept alive by the engine — object spreads of per-request objects,
 *    WeakMaps keyed by requests, object literals with getters (each gets its own hidden class in
 *    old space, which holds the request's objects) — show up here as hundreds of KB.
 *
 * Options (env): BENCH_SECONDS (6), BENCH_GC_RATE (2000), BENCH_PARTS ("pipeline,server").
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { openLoop } from './lib/open-loop.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const RATE = Number(process.env.BENCH_GC_RATE ?? 2000);
const PARTS = (process.env.BENCH_PARTS ?? 'pipeline,server').split(',');
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
  const begin = performance.now();
  const end = begin + SECONDS * 1000;
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
    await execute(resilient, { tokenizer, metrics: gateway.metrics }, gen, {
      signal: new Cancellation(),
      summary,
      onEvent: () => {},
      streamed: false,
    });
    requests++;
  }
  process.stdout.write(`US_PER_REQUEST ${((performance.now() - begin) * 1000) / requests}\n`);
  await gateway.close();
}

interface Scavenge {
  pause: number;
  survived: number;
  promoted: number;
}

function scavengeOf(line: string): Scavenge {
  const field = (name: string): number => Number(new RegExp(` ${name}=([\\d.]+)`).exec(line)?.[1]);
  return { pause: field('pause'), survived: field('new_space_survived'), promoted: field('promoted') };
}

function summary(scavenges: readonly Scavenge[]): string {
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const kb = (xs: number[]): string => (mean(xs) / 1024).toFixed(1);
  return (
    `${scavenges.length} scavenges, mean ${kb(scavenges.map((s) => s.survived))} KB surviving and ` +
    `${kb(scavenges.map((s) => s.promoted))} KB promoted each, ` +
    `mean pause ${mean(scavenges.map((s) => s.pause)).toFixed(2)} ms`
  );
}

function pipelinePart(): void {
  const stdout = execFileSync(
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
  const lines = stdout.split('\n').filter((line) => line.includes(' gc=s '));
  const isolateOf = (line: string): string => /^\[[^\]]*\]/.exec(line)?.[0] ?? '';
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(isolateOf(line), (counts.get(isolateOf(line)) ?? 0) + 1);
  const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const scavenges = lines
    .filter((line) => isolateOf(line) === main)
    .map(scavengeOf)
    .slice(10);
  if (scavenges.length === 0) throw new Error('no scavenges seen: run longer (BENCH_SECONDS)');
  const usPerRequest = Number(/US_PER_REQUEST ([\d.]+)/.exec(stdout)?.[1]);
  console.log(
    `pipeline on the echo tier, in process, ${SECONDS} s: ${usPerRequest.toFixed(1)} µs per ` +
      `request (16 tokens); ${summary(scavenges)}`,
  );
}

async function serverPart(): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--trace-gc-nvp',
      '--import',
      'tsx',
      fileURLToPath(new URL('./gateway.ts', import.meta.url)),
      '--serve-gateway',
      'static',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // stdout mixes the gateway's JSON log lines with V8's trace; only scavenge lines are kept.
  const scavenges: Scavenge[] = [];
  /** Pauses of full (mark-compact) collections, in ms. */
  const fullGcs: number[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes(' gc=s ')) scavenges.push(scavengeOf(line));
      else if (line.includes(' gc=mc ')) fullGcs.push(scavengeOf(line).pause);
    }
  });
  let seen = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /LISTENING (\S+)/.exec(seen);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${seen}`)));
  });
  const load = {
    url: `${url}/v1/completions`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tiergate-echo',
      prompt: 'The county grand jury said Friday',
      max_tokens: 16,
    }),
    rate: RATE,
    connections: 16,
  };
  await openLoop({ ...load, durationSeconds: 3, warmupSeconds: 0 }); // JIT and heap warm-up
  const from = scavenges.length;
  const fromFull = fullGcs.length;
  const result = await openLoop({ ...load, durationSeconds: SECONDS, warmupSeconds: 0 });
  const measured = scavenges.slice(from);
  const full = fullGcs.slice(fromFull);
  child.kill('SIGTERM');
  await once(child, 'exit');
  if (measured.length === 0) throw new Error('no scavenges seen: run longer (BENCH_SECONDS)');
  console.log(
    `gateway over HTTP, echo tier, ${RATE} req/s open loop for ${SECONDS} s ` +
      `(${result.completed} answered, ${result.errors} errors, p99 ${result.latency.p99.toFixed(2)} ms): ` +
      `${summary(measured)}, longest ${Math.max(...measured.map((m) => m.pause)).toFixed(2)} ms; ` +
      `${full.length} full collections${full.length > 0 ? `, longest pause ${Math.max(...full).toFixed(2)} ms` : ''}`,
  );
}

if (process.argv.includes('--child')) await runPipeline();
else {
  if (PARTS.includes('pipeline')) pipelinePart();
  if (PARTS.includes('server')) await serverPart();
}
