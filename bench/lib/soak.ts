/**
 * A memory soak of the real gateway over HTTP (bench/soak.ts, test/gateway/memory-soak.test.ts):
 * small completions at a fixed concurrency against a gateway in a child process
 * (bench/lib/soak-gateway.ts), its RSS and heap sampled over IPC. The figure is RSS at the end
 * minus RSS after warm-up; peak is the largest sample after warm-up. No collection is forced:
 * what the gateway holds is what a container's memory limit would see.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./soak-gateway.ts', import.meta.url));
const MB = 1024 * 1024;

export interface GatewayMemory extends NodeJS.MemoryUsage {
  /** Bytes V8 holds for its young generation (new_space), which grows under load up to the semi-space limit. */
  readonly newSpace: number;
}

export interface SoakGateway {
  readonly url: string;
  memory(): Promise<GatewayMemory>;
  /** One sample value from /metrics, e.g. 'tiergate_tier_native_reclaims_total{tier="edge"}'. */
  metric(series: string): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the soak gateway; `reclaimEveryMiB` undefined keeps the edge tier's default. */
export async function startSoakGateway(reclaimEveryMiB?: number): Promise<SoakGateway> {
  const env = { ...process.env };
  if (reclaimEveryMiB === undefined) delete env.SOAK_RECLAIM_MIB;
  else env.SOAK_RECLAIM_MIB = String(reclaimEveryMiB);
  // The flag of `npm start` (docs/gateway.md, "Runtime flags"), with the young generation
  // starting at that size: under load V8 grows it there anyway (measured: 64 -> 128 MB of
  // new space during 6,000 edge requests after warm-up, +48 MB of RSS), a one-time cost the flag
  // bounds. Starting there keeps that growth from hiding or mimicking memory that piles up.
  const child = fork(CHILD, [], {
    env,
    execArgv: ['--import', 'tsx', '--max-semi-space-size=64', '--min-semi-space-size=64'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const onExit = (code: number | null): void =>
      reject(new Error(`soak gateway exited with ${String(code)} before it was ready`));
    child.once('exit', onExit);
    child.once('message', (msg: { url: string }) => {
      child.off('exit', onExit);
      resolve(msg.url);
    });
  });
  return {
    url,
    memory: () => ask(child),
    async metric(series: string): Promise<number> {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.send({ type: 'stop' });
      await exited;
    },
  };
}

function ask(child: ChildProcess): Promise<GatewayMemory> {
  return new Promise((resolve) => {
    const onMessage = (msg: { type?: string; usage?: NodeJS.MemoryUsage; newSpace?: number }): void => {
      if (msg.type !== 'mem' || msg.usage === undefined) return;
      child.off('message', onMessage);
      resolve({ ...msg.usage, newSpace: msg.newSpace ?? 0 });
    };
    child.on('message', onMessage);
    child.send({ type: 'mem' });
  });
}

export interface SoakOptions {
  readonly model: string;
  /** Requests after warm-up. */
  readonly requests: number;
  readonly warmup: number;
  /** Requests in flight at once (the edge tier's sequences). */
  readonly concurrency: number;
  readonly maxTokens?: number;
}

export interface SoakResult {
  readonly model: string;
  readonly requests: number;
  readonly failed: number;
  /** Request latency as the client saw it (a full collection pauses the requests in flight). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** MB (2^20 bytes). */
  readonly warmRss: number;
  readonly endRss: number;
  readonly peakRss: number;
  /** End minus warm-up RSS. */
  readonly growth: number;
  /**
   * Peak minus warm-up RSS: the steadier figure when V8's own full collections come at random
   * points of the run and free what piled up before them.
   */
  readonly peakGrowth: number;
  readonly warmHeap: number;
  readonly endHeap: number;
  /** V8's heap reserved (heapTotal) after warm-up and at the end. */
  readonly warmHeapTotal: number;
  readonly endHeapTotal: number;
  /** V8's young generation after warm-up and at the end. */
  readonly warmNewSpace: number;
  readonly endNewSpace: number;
  readonly seconds: number;
}

/**
 * Sends `count` small completions to one model, `concurrency` at a time; resolves to the number
 * that did not answer 200 and each request's latency in milliseconds.
 */
export async function load(
  gw: SoakGateway,
  model: string,
  count: number,
  concurrency: number,
  maxTokens = 8,
): Promise<{ failed: number; latencies: Float64Array }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({ model, prompt: 'The jury said', max_tokens: maxTokens, temperature: 0 });
  const target = new URL('/v1/completions', gw.url);
  let next = 0;
  let failed = 0;
  const latencies = new Float64Array(count);
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const begin = performance.now();
      if ((await post(agent, target, body)) !== 200) failed++;
      latencies[i] = performance.now() - begin;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { failed, latencies };
}

/** Sends `warmup` then `requests` small completions to one model and reports the gateway's memory. */
export async function soak(gw: SoakGateway, options: SoakOptions): Promise<SoakResult> {
  const { model, concurrency, maxTokens } = options;
  await load(gw, model, options.warmup, concurrency, maxTokens);
  const warm = await gw.memory();
  let peak = warm.rss;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await new Promise((r) => setTimeout(r, 200));
      peak = Math.max(peak, (await gw.memory()).rss);
    }
  })();
  const begin = performance.now();
  const { failed, latencies } = await load(gw, model, options.requests, concurrency, maxTokens);
  latencies.sort();
  const seconds = (performance.now() - begin) / 1000;
  sampling = false;
  await sampler;
  const end = await gw.memory();
  peak = Math.max(peak, end.rss);
  return {
    model,
    requests: options.requests,
    failed,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? 0,
    warmRss: warm.rss / MB,
    endRss: end.rss / MB,
    peakRss: peak / MB,
    growth: (end.rss - warm.rss) / MB,
    peakGrowth: (peak - warm.rss) / MB,
    warmHeap: warm.heapUsed / MB,
    endHeap: end.heapUsed / MB,
    warmHeapTotal: warm.heapTotal / MB,
    endHeapTotal: end.heapTotal / MB,
    warmNewSpace: warm.newSpace / MB,
    endNewSpace: end.newSpace / MB,
    seconds,
  };
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}

function post(agent: Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** One result as a line: warm-up RSS, end RSS, peak, growth, heap. */
export function formatSoak(label: string, r: SoakResult): string {
  const f = (x: number): string => x.toFixed(1);
  const sign = (x: number): string => (x >= 0 ? '+' : '') + f(x);
  return (
    `${label}: ${r.requests} requests on ${r.model} in ${r.seconds.toFixed(0)} s (${r.failed} failed; ` +
    `latency p50 ${f(r.p50Ms)} / p99 ${f(r.p99Ms)} / max ${f(r.maxMs)} ms): ` +
    `RSS after warm-up ${f(r.warmRss)} MB, at the end ${f(r.endRss)} MB, peak ${f(r.peakRss)} MB, ` +
    `growth ${sign(r.growth)} MB (peak ${sign(r.peakGrowth)} MB); heap used ${f(r.warmHeap)} -> ${f(r.endHeap)} MB, ` +
    `reserved ${f(r.warmHeapTotal)} -> ${f(r.endHeapTotal)} MB (young generation ` +
    `${f(r.warmNewSpace)} -> ${f(r.endNewSpace)} MB)`
  );
}
