import type { Logger } from 'pino';
import { buildConfig, type Config } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import { createLogger } from '../observability/logger.js';
import { startServer } from '../server.js';
import type { Tier } from '../tiers/tier.js';
import type { BenchOptions, TargetBench } from './bench-types.js';
import { loadCommittedSlice } from './eval-slice.js';
import { runLevel, StreamClock, type LevelResult, type StreamFn } from './load-run.js';
import { peakRssBytes } from './proc-stats.js';
import type { Progress } from './progress.js';
import { httpStream } from './sse-stream.js';
import type { Target } from './targets.js';
import { TierHost } from './tier-host.js';

/** Name the bench gateway serves the target under. */
const BENCH_MODEL = 'tiergate-bench';

/**
 * Benchmarks one target in this process: load, every concurrency level directly against the tier,
 * then the same levels through a real gateway on a free port. Run in a child process per target
 * (run-bench.ts) so the peak RSS read from VmHWM belongs to this target alone.
 */
export async function benchTarget(
  config: Config,
  target: Target,
  options: BenchOptions,
  logger: Logger,
  progress: Progress,
): Promise<TargetBench> {
  const host = await TierHost.open(config, logger);
  const variant = host.variantOf(target);
  const fileBytes = host.family.variants.find((v) => v.id === variant)?.bytes;
  const prompt = benchPrompt(host.family, options.promptTokens);
  const { tier, loadMs } = await host.start(target);
  const info = tier.info();
  const sidecar = (tier as Tier & { sidecarPid?: number | undefined }).sidecarPid;
  const pids = sidecar === undefined ? [process.pid] : [process.pid, sidecar];
  const levels = options.concurrency.length;
  progress.begin(`bench ${target.name}`, levels * 2);
  let direct: LevelResult[];
  let peak: number | undefined;
  try {
    direct = await measureLevels(
      directStream(tier, prompt, options.maxTokens),
      options,
      pids,
      progress,
      'direct',
    );
    peak = peakRssBytes(sidecar ?? process.pid);
  } finally {
    await tier.close();
  }
  const gateway = await measureGateway(config, target, prompt, options, progress, sidecar === undefined);
  await host.tokenizer.close();
  progress.end(`${target.name}: loaded in ${loadMs.toFixed(0)} ms`);
  return {
    target: target.name,
    tier: target.tier,
    kind: target.config.kind,
    framework: info.framework,
    variant,
    precision: info.precision,
    fileBytes,
    loadMs,
    peakRssBytes: peak,
    rssOf: sidecar === undefined ? 'gateway' : 'sidecar',
    direct,
    gateway,
  };
}

async function measureLevels(
  stream: StreamFn,
  options: BenchOptions,
  pids: readonly number[],
  progress: Progress,
  path: string,
): Promise<LevelResult[]> {
  const out: LevelResult[] = [];
  // One unmeasured request first: JIT, connection set-up and lazy allocations are not steady state.
  await stream();
  for (const concurrency of options.concurrency) {
    const r = await runLevel(stream, { concurrency, durationMs: options.durationMs, pids });
    out.push(r);
    progress.tick(`${path} c=${concurrency} ${r.tokensPerSec.toFixed(0)} tok/s`);
  }
  return out;
}

function directStream(tier: Tier, prompt: readonly number[], maxTokens: number): StreamFn {
  // Greedy with no stop tokens: every stream yields exactly maxTokens, so levels compare.
  const request = {
    tokens: prompt,
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens,
    stopTokens: [],
    topLogprobs: 0,
  };
  return async () => {
    const clock = new StreamClock();
    for await (const e of tier.generate(request, new AbortController().signal)) {
      if (e.kind === 'tokens') for (let i = 0; i < e.tokens.length; i++) clock.token();
    }
    return clock.done();
  };
}

/** The same tier behind the real gateway (HTTP, pipeline, detokeniser, SSE), alone on a free port. */
async function measureGateway(
  config: Config,
  target: Target,
  prompt: readonly number[],
  options: BenchOptions,
  progress: Progress,
  inProcess: boolean,
): Promise<LevelResult[]> {
  const gatewayConfig = buildConfig(
    {
      server: { ...config.server, host: '127.0.0.1', port: 0 },
      logging: { level: 'silent', logPrompts: false },
      family: config.family,
      tokenizer: config.tokenizer,
      chat: config.chat,
      limits: config.limits,
      tiers: { [target.tier]: target.config },
      models: { [BENCH_MODEL]: { tier: target.tier } },
    },
    { env: {} },
    'bench',
  );
  const server = await startServer(gatewayConfig, createLogger('silent'));
  try {
    const served = server.gateway.tiers.get(target.tier) as (Tier & { sidecarPid?: number }) | undefined;
    const sidecar = inProcess ? undefined : served?.sidecarPid;
    const pids = sidecar === undefined ? [process.pid] : [process.pid, sidecar];
    const stream: StreamFn = () =>
      httpStream({ baseUrl: server.url, model: BENCH_MODEL, prompt, maxTokens: options.maxTokens });
    return await measureLevels(stream, options, pids, progress, 'gateway');
  } finally {
    await server.shutdown();
  }
}

/** A fixed prompt: the start of the first eval-slice window (real text of the family's language). */
function benchPrompt(family: ModelFamily, n: number): number[] {
  const first = loadCommittedSlice(family, n).windows[0];
  if (first === undefined || first.length < 2)
    throw new Error(`the eval slice of ${family.dir} has no window to prompt with`);
  return first.slice(0, n);
}
