/**
 * npm run bench:gateway — what the gateway itself costs.
 *
 * 1. Added latency and highest rate, on the zero-work echo tier (logging at info and metrics on,
 *    as in production), against a bare fastify handler that parses the same JSON body and returns
 *    the same response body, and against a second gateway that routes the same model with the
 *    policy engine over three echo tiers (breakers and admission control are on in both). Each
 *    server runs in its own child process. Fixed rates use an open-loop constant-rate generator
 *    (bench/lib/open-loop.ts: evenly spaced requests, latency from each request's due time, µs
 *    resolution); the highest rate is autocannon unthrottled. Rounds rotate the servers' order
 *    and medians are quoted, because the load generator shares the 2 cores and is noisy. The
 *    routing decision's own cost comes from bench/routing.ts, run as a child in the same run.
 * 2. Streaming efficiency: tokens/s of one SSE stream through the gateway on the llama.cpp edge
 *    tier versus node-llama-cpp's own generation loop on the same GGUF, same thread count. The
 *    loop runs in a child process of its own, on the gateway's core with the gateway's V8 flags,
 *    so the two sides differ only by what the gateway does.
 *
 * The gateways run the compiled build (dist/, as `npm start` does; `npm run bench:gateway` builds
 * it first), not the TypeScript sources through tsx, whose name-keeping helper runs on every
 * closure a request creates and would be charged to the gateway.
 *
 * 4. Governance (bench/governance.ts, run as a child at the end): the plain gateway beside one with
 *    per-key limits on every request and one with tracing at 100% sampling (and, with
 *    BENCH_BEFORE_DIST, the gateway before issue 21): highest rate ratios and added p50/p99.
 *
 * 3. Server CPU time per request (from /proc/<pid>/stat around each load run): unlike latency and
 *    rates, this barely moves with the machine's background load, so it is the steadiest measure
 *    of what the gateway costs on top of fastify.
 *
 * With `taskset` available (and BENCH_PIN not 0) the servers and the direct llama.cpp loop run on
 * CPU 1 and this process (autocannon, the stream client) on CPU 0, so the load generator does not
 * steal the server's core; other processes on the machine still can.
 *
 * Options (env): BENCH_ROUNDS (3), BENCH_SECONDS (4), BENCH_RATES ("500,1000,2000"),
 * BENCH_TOKENS (200), BENCH_STREAM_WARMUP (10), BENCH_STREAM_ROUNDS (10),
 * BENCH_SSE_WINDOWS ("0,1": the server.sseCoalesceMs values of extra gateways to stream through),
 * BENCH_STREAM_CLIENT ("http", or "fetch"), BENCH_PARTS ("load,stream,governance"), BENCH_GGUF (models/tiny/tiny-q4_k_m.gguf), BENCH_PIN (1),
 * BENCH_NODE_FLAGS ("--max-semi-space-size=64": the servers' V8 flags, as npm start runs the gateway).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { openLoop } from './lib/open-loop.js';
import { median } from './lib/median.js';
import { autocannon, cpuSeconds, hasTaskset } from './lib/server-bench.js';

/** The part of autocannon's API used here (the package ships no TypeScript types). */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const RATES = (process.env.BENCH_RATES ?? '500,1000,2000').split(',').map(Number);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 200);
const STREAM_WARMUP = Number(process.env.BENCH_STREAM_WARMUP ?? 10);
const STREAM_ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 10);
const PARTS = (process.env.BENCH_PARTS ?? 'load,stream,governance').split(',');
/** server.sseCoalesceMs of the extra gateways the stream runs through beside the default one. */
const SSE_WINDOWS = (process.env.BENCH_SSE_WINDOWS ?? '0,1')
  .split(',')
  .filter((w) => w !== '')
  .map(Number);
const GGUF = process.env.BENCH_GGUF ?? `${ROOT}models/tiny/tiny-q4_k_m.gguf`;
const PIN = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && hasTaskset();
const REQUEST = { model: 'tiergate-echo', prompt: 'The county grand jury said Friday', max_tokens: 16 };

// ---- child-process servers -------------------------------------------------------------------

/** `--serve-bare <bodyJson>`: the baseline, a bare fastify POST handler returning a fixed body. */
async function serveBare(body: string): Promise<void> {
  const app = Fastify({ logger: false });
  app.post('/v1/completions', async (_req, reply) =>
    reply.type('application/json; charset=utf-8').send(body),
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stderr.write(`LISTENING ${url}\n`);
}

/**
 * `--serve-gateway [static|policy] [sseCoalesceMs]`: the real gateway, logging on. `static`
 * serves the bench model from one echo tier (the model table); `policy` routes it with the policy
 * engine over three echo tiers with different costs and accuracies, as bench/routing.ts does.
 */
async function serveGateway(withPolicy: boolean, sseCoalesceMs?: number): Promise<void> {
  const { buildConfig } = (await import(built('config/index.js'))) as typeof import('../src/config/index.js');
  const { createLogger } = (await import(
    built('observability/logger.js')
  )) as typeof import('../src/observability/logger.js');
  const { startServer } = (await import(built('server.js'))) as typeof import('../src/server.js');
  const echoTiers = withPolicy
    ? { echo: { kind: 'echo' }, 'echo-b': { kind: 'echo' }, 'echo-c': { kind: 'echo' } }
    : { echo: { kind: 'echo' } };
  const routing = withPolicy
    ? {
        byModel: { 'tiergate-echo': 'bench' },
        policies: {
          bench: {
            tiers: ['echo', 'echo-b', 'echo-c'],
            objective: 'cheapest',
            latencyBudgetMs: 500,
            accuracyFloor: 0.99,
            fallback: ['echo-b', 'echo-c'],
            costPer1kTokens: { echo: 1, 'echo-b': 2, 'echo-c': 3 },
          },
        },
        profiles: { echo: { accuracy: 0.995 }, 'echo-b': { accuracy: 1 }, 'echo-c': { accuracy: 1 } },
      }
    : {};
  const config = buildConfig(
    {
      server: { port: 0, ...(sseCoalesceMs === undefined ? {} : { sseCoalesceMs }) },
      logging: { level: 'info' },
      family: { dir: 'models/tiny' },
      // The streaming comparison runs on the static gateway only.
      tiers: withPolicy
        ? echoTiers
        : { ...echoTiers, edge: { kind: 'llamacpp', model: GGUF, threads: 1, sequences: 2 } },
      models: withPolicy
        ? { 'tiergate-echo': { tier: 'echo' } }
        : { 'tiergate-echo': { tier: 'echo' }, 'tiergate-tiny': { tier: 'edge' } },
      routing,
    },
    { baseDir: ROOT, env: {} },
  );
  const server = await startServer(config, createLogger(config.logging.level));
  process.stderr.write(`LISTENING ${server.url}\n`);
}

/**
 * `--serve-direct`: node-llama-cpp's own generation loop, the streaming baseline, in a process
 * started like the gateway's (same core, same V8 flags). Each IPC message runs one generation and
 * is answered with its tokens/s.
 */
async function serveDirect(): Promise<void> {
  const direct = await makeDirectLoop();
  process.on('message', () => void direct.run().then((tokensPerSecond) => process.send!(tokensPerSecond)));
  process.stderr.write('LISTENING direct-loop\n');
}

/** One generation of the `--serve-direct` child: its tokens/s. */
function runDirect(direct: ChildProcess): Promise<number> {
  const answer = once(direct, 'message').then(([tokensPerSecond]) => tokensPerSecond as number);
  direct.send('run');
  return answer;
}

/** A module of the compiled build (same layout as src/; typed from its source). */
function built(path: string): string {
  return new URL(`../dist/${path}`, import.meta.url).href;
}

/**
 * The V8 flags `npm start` (and bin/tiergate.js, the Dockerfile) run the gateway with; the bare
 * server gets them too, so both run on the same runtime settings. BENCH_NODE_FLAGS replaces them
 * (e.g. empty, to see what they are worth).
 */
const SERVER_NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=64')
  .split(' ')
  .filter((f) => f !== '');

/** Peak resident memory of a process so far, in MB (VmHWM from /proc, Linux). */
function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb) / 1024;
  } catch {
    return NaN;
  }
}

function startChild(args: string[], ipc = false): Promise<{ child: ChildProcess; url: string }> {
  const nodeArgs = [...SERVER_NODE_FLAGS, '--import', 'tsx', fileURLToPath(import.meta.url), ...args];
  const [cmd, argv] = PIN
    ? ['taskset', ['-c', '1', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    // stdout (the gateway's JSON log lines) goes to /dev/null: pino still formats and writes
    // every line, but this process does not spend CPU reading them.
    stdio: ipc ? ['ignore', 'ignore', 'pipe', 'ipc'] : ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString();
      const m = /LISTENING (\S+)/.exec(seen);
      if (m?.[1] !== undefined) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve({ child, url: m[1] });
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${seen.slice(-2000)}`)));
  });
}

// ---- measurements ----------------------------------------------------------------------------

interface LoadResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** Server CPU microseconds per answered request during the run. */
  readonly cpuUs: number;
}

async function load(
  server: { child: ChildProcess; url: string },
  rate: number | undefined,
  seconds = SECONDS,
): Promise<LoadResult> {
  const url = server.url;
  const cpu0 = cpuSeconds(server.child.pid);
  const result = await autocannon({
    url: `${url}/v1/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(REQUEST),
    connections: rate === undefined ? 32 : 16,
    duration: seconds,
    ...(rate === undefined ? {} : { overallRate: rate }),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    cpuUs: ((cpuSeconds(server.child.pid) - cpu0) * 1e6) / Math.max(1, result.requests.total),
  };
}

/**
 * One fixed-rate point: open-loop constant-rate load (bench/lib/open-loop.ts) — requests evenly
 * spaced, latency from each request's due time, microsecond resolution. (autocannon's
 * `overallRate` is a per-connection budget per second: a saturation burst at the start of every
 * second, which measures queueing in the burst rather than the gateway's added latency.)
 */
async function fixedRate(server: { child: ChildProcess; url: string }, rate: number): Promise<LoadResult> {
  const cpu0 = cpuSeconds(server.child.pid);
  const r = await openLoop({
    url: `${server.url}/v1/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(REQUEST),
    rate,
    durationSeconds: SECONDS,
    connections: 16,
    warmupSeconds: 1,
  });
  return {
    rps: r.achievedRate,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    // The warm-up second is included in the CPU reading: divide by everything sent.
    cpuUs: ((cpuSeconds(server.child.pid) - cpu0) * 1e6) / Math.max(1, r.sent + rate),
  };
}

/**
 * Unloaded added latency at microsecond resolution (autocannon reports whole milliseconds):
 * one keep-alive connection, requests back to back, per-request wall time.
 */
async function serialLatency(url: string, n: number): Promise<{ p50: number; p99: number }> {
  const body = JSON.stringify(REQUEST);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n * 0.5)]!, p99: times[Math.floor(n * 0.99)]! };
}

/**
 * How the stream part reads the gateway: `http` (default) is node:http with a keep-alive agent,
 * keeping only the last bytes of the body (where the usage is); `fetch` is undici's fetch and
 * `res.text()`, an application's usual client. The client runs on the other core, but not in
 * isolation from the one it measures: the two share the L3 cache and memory bandwidth, and a
 * heavier client can slow the llama.cpp decode on CPU 1 (compare the two with BENCH_STREAM_CLIENT).
 */
const STREAM_CLIENT = process.env.BENCH_STREAM_CLIENT === 'fetch' ? 'fetch' : 'http';
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One generation through the gateway, as an SSE stream (or, with `stream` false, as one whole
 * answer): generated tokens per second, request to last byte.
 */
async function gatewayStream(url: string, stream = true): Promise<number> {
  const body = JSON.stringify({
    model: 'tiergate-tiny',
    prompt: 'The county grand jury said',
    max_tokens: TOKENS,
    temperature: 0,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
  const t0 = performance.now();
  const text = STREAM_CLIENT === 'fetch' ? await fetchText(url, body) : await httpTail(url, body);
  const seconds = (performance.now() - t0) / 1000;
  const usage = /"completion_tokens":(\d+)/.exec(text);
  return Number(usage?.[1] ?? 0) / seconds;
}

async function fetchText(url: string, body: string): Promise<string> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return res.text();
}

/** The body's last 1 KB (a stream's usage chunk and [DONE]; a whole answer's usage). */
function httpTail(url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/completions`,
      {
        method: 'POST',
        agent: keepAlive,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let tail = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => {
          tail = tail.length + chunk.length > 1024 ? (tail + chunk).slice(-1024) : tail + chunk;
        });
        res.on('end', () => resolve(tail));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** node-llama-cpp's own loop: same GGUF, same prompt, greedy, same thread count. */
async function makeDirectLoop(): Promise<{ run: () => Promise<number> }> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: GGUF });
  const context = await model.createContext({
    sequences: 1,
    threads: 1,
    contextSize: model.trainContextSize,
    // As the edge tier runs it by default (bench:edge measures the two kernels).
    flashAttention: false,
  });
  const prompt = [model.tokens.bos!, ...model.tokenize('The county grand jury said')];
  const run = async (): Promise<number> => {
    const seq = context.getSequence();
    const t0 = performance.now();
    let n = 0;
    for await (const token of seq.evaluate(prompt, { temperature: 0 })) {
      void token;
      if (++n >= TOKENS) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    seq.dispose();
    return n / seconds;
  };
  return { run };
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const fmt = (x: number, d = 2): string => x.toFixed(d).padStart(9);
  const gateway = await startChild(['--serve-gateway', 'static']);
  const policy = await startChild(['--serve-gateway', 'policy']);
  // The bare server returns exactly the gateway's response body for this request.
  const sample = await (
    await fetch(`${gateway.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(REQUEST),
    })
  ).text();
  const bare = await startChild(['--serve-bare', sample]);
  if (PIN) execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  console.log(
    `tiergate bench:gateway — ${ROUNDS} alternating rounds of ${SECONDS} s per point, body ${sample.length} B`,
  );
  console.log(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ' ',
      )} on ${cpus().length} CPUs; ${PIN ? 'servers pinned to CPU 1, load generator to CPU 0 (taskset)' : 'no CPU pinning'}`,
  );
  console.log(
    '  gw: gateway, static model → echo tier; policy: gateway, policy engine over 3 echo tiers.\n' +
      '  Both: logging at info, metrics, per-tier breaker (opossum) and admission control on.\n' +
      `  All three servers: node ${SERVER_NODE_FLAGS.join(' ') || '(no flags)'} (npm start: --max-semi-space-size=64).`,
  );

  const servers = { bare, gw: gateway, policy } as const;
  type Which = keyof typeof servers;
  const names = Object.keys(servers) as Which[];
  if (PARTS.includes('load')) {
    // JIT warm-up, not measured: the first seconds of a fresh process run unoptimised code.
    for (const which of names) await load(servers[which], undefined, 2);

    const perRate = new Map<number, Record<Which, LoadResult[]>>();
    const max: Record<Which, LoadResult[]> = { bare: [], gw: [], policy: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate which server goes first, so drift in background load hits all alike.
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const rate of RATES) {
        const entry = perRate.get(rate) ?? { bare: [], gw: [], policy: [] };
        perRate.set(rate, entry);
        for (const which of order) entry[which].push(await fixedRate(servers[which], rate));
      }
      for (const which of order) max[which].push(await load(servers[which], undefined));
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }

    console.log(
      "\nPOST /v1/completions at fixed rates, open loop (medians of rounds; ms from each request's due time)",
    );
    console.log('  rate/s  server       p50       p99  added p50  added p99    req/s  errors  CPU µs/req');
    for (const [rate, r] of perRate) {
      const b50 = median(r.bare.map((x) => x.p50));
      const b99 = median(r.bare.map((x) => x.p99));
      for (const which of names) {
        const p50 = median(r[which].map((x) => x.p50));
        const p99 = median(r[which].map((x) => x.p99));
        const errors = r[which].reduce((sum, x) => sum + x.errors, 0);
        const added = which === 'bare' ? ['        -', '        -'] : [fmt(p50 - b50, 3), fmt(p99 - b99, 3)];
        console.log(
          `${String(rate).padStart(8)}  ${which.padEnd(6)} ${fmt(p50, 3)} ${fmt(p99, 3)}  ${added[0]}  ${added[1]} ${fmt(median(r[which].map((x) => x.rps)), 0)}  ${String(errors).padStart(6)}  ${fmt(median(r[which].map((x) => x.cpuUs)), 0)}`,
        );
      }
    }

    const serial: Record<Which, { p50: number; p99: number }[]> = { bare: [], gw: [], policy: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of names) serial[which].push(await serialLatency(servers[which].url, 1000));
    }
    const s = (which: Which, k: 'p50' | 'p99'): number => median(serial[which].map((x) => x[k]));
    console.log(
      '\nunloaded, one connection, 1000 requests back to back (medians of rounds; ms, µs resolution)',
    );
    for (const which of names) {
      const added =
        which === 'bare'
          ? ''
          : ` | added p50 ${(s(which, 'p50') - s('bare', 'p50')).toFixed(3)} p99 ${(s(which, 'p99') - s('bare', 'p99')).toFixed(3)}`;
      console.log(
        `  ${which.padEnd(6)} p50 ${s(which, 'p50').toFixed(3)} p99 ${s(which, 'p99').toFixed(3)}${added}`,
      );
    }

    const maxRps = (which: Which): number => median(max[which].map((x) => x.rps));
    const maxCpu = (which: Which): number => median(max[which].map((x) => x.cpuUs));
    // Each round runs the three servers back to back, so a round's ratio compares runs that saw
    // the same background load; the median of those ratios is the figure least moved by a
    // disturbed round (the ratio of the medians can pair a quiet bare run with a disturbed one).
    const roundRatios = (which: Which): number[] => max[which].map((x, i) => x.rps / max.bare[i]!.rps);
    console.log('\nhighest rate (unthrottled, 32 connections), medians of rounds');
    for (const which of names) {
      const ratio =
        which === 'bare'
          ? ''
          : `, ratio to bare ${median(roundRatios(which)).toFixed(2)} (median of the rounds' ratios: ${roundRatios(
              which,
            )
              .map((r) => r.toFixed(2))
              .join(', ')}; ratio of the medians ${(maxRps(which) / maxRps('bare')).toFixed(2)})`;
      console.log(
        `  ${which.padEnd(6)} ${maxRps(which).toFixed(0).padStart(6)} req/s${ratio}; server CPU ${maxCpu(which).toFixed(0)} µs/req, peak RSS ${peakRssMb(servers[which].child.pid).toFixed(0)} MB (rounds: ${max[which].map((x) => x.rps.toFixed(0)).join(', ')})`,
      );
    }
    console.log(
      `  CPU ratio bare/gw ${(maxCpu('bare') / maxCpu('gw')).toFixed(2)}, bare/policy ${(maxCpu('bare') / maxCpu('policy')).toFixed(2)} (= the rate ratio one free core would give)`,
    );

    // The routing decision's own cost, measured by bench/routing.ts in a child on this run.
    const decisions = execFileSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./routing.ts', import.meta.url))],
      { cwd: ROOT, env: { ...process.env, BENCH_DECISIONS: '50000' }, encoding: 'utf8' },
    );
    console.log(`\n${decisions.trim()}`);
  }

  // The other two servers are done: stopped here so that their after-load garbage collection
  // (V8 collects old space when a process goes idle) does not share CPU 1 with the streaming run.
  for (const server of [bare, policy]) server.child.kill('SIGTERM');
  await Promise.all([bare, policy].map((server) => once(server.child, 'exit')));

  if (PARTS.includes('stream')) {
    // Streaming efficiency: node-llama-cpp's own loop and one SSE stream through the gateway as
    // configured by default (SSE writes coalesced within server.sseCoalesceMs, 16 ms), alternating,
    // medians; beside them, gateways with other windows (BENCH_SSE_WINDOWS: 0 writes every event
    // at once, 1 was the default before 2026-12-04), and the same generation as one whole answer (stream: false), which separates the gateway's own
    // per-token work from the delivery of the events. All are warmed up first: V8 needs a few
    // thousand tokens before node-llama-cpp's and the gateway's per-token code is optimised, and
    // a cold first run would dominate a median of a few.
    const direct = await startChild(['--serve-direct'], true);
    const windowed = await Promise.all(
      SSE_WINDOWS.map((w) => startChild(['--serve-gateway', 'static', String(w)])),
    );
    const sides = [
      { label: 'node-llama-cpp loop', pid: direct.child.pid, run: () => runDirect(direct.child) },
      { label: 'gateway SSE', pid: gateway.child.pid, run: () => gatewayStream(gateway.url) },
      ...windowed.map((server, k) => ({
        label: `gateway SSE, sseCoalesceMs ${SSE_WINDOWS[k]}`,
        pid: server.child.pid,
        run: () => gatewayStream(server.url),
      })),
      {
        label: 'gateway, stream: false',
        pid: gateway.child.pid,
        run: () => gatewayStream(gateway.url, false),
      },
    ];
    for (let i = 0; i < STREAM_WARMUP; i++) for (const side of sides) await side.run();
    const rates = sides.map(() => [] as number[]);
    const cpu = sides.map(() => 0);
    for (let i = 0; i < STREAM_ROUNDS; i++) {
      for (const [k, side] of sides.entries()) {
        const c0 = cpuSeconds(side.pid);
        rates[k]!.push(await side.run());
        cpu[k]! += cpuSeconds(side.pid) - c0;
      }
    }
    const extra = [direct, ...windowed];
    for (const server of extra) server.child.kill('SIGTERM');
    await Promise.all(extra.map((server) => once(server.child, 'exit')));
    console.log(
      `\nstreaming, ${TOKENS} greedy tokens, ${GGUF.split('/').pop()}, threads 1, plain attention (medians of ${STREAM_ROUNDS} alternating runs after ${STREAM_WARMUP} warm-up runs each; each side in a process of its own${PIN ? ' on CPU 1' : ''}; client: ${STREAM_CLIENT === 'fetch' ? 'fetch' : 'node:http'}${PIN ? ' on CPU 0' : ''})`,
    );
    // As for the highest rate: each round runs every side back to back, so the median of the
    // rounds' ratios is the figure least moved by drift in the machine's load.
    for (const [k, side] of sides.entries()) {
      const tps = median(rates[k]!);
      const cpuUs = ((cpu[k]! * 1e6) / (STREAM_ROUNDS * TOKENS)).toFixed(0);
      const ratios = rates[k]!.map((r, i) => r / rates[0]![i]!);
      const ratio =
        k === 0
          ? ''
          : `, ratio ${median(ratios).toFixed(2)} (median of the rounds' ratios; of the medians ${(tps / median(rates[0]!)).toFixed(2)})`;
      console.log(
        `  ${side.label.padEnd(29)} ${tps.toFixed(0).padStart(5)} tokens/s${ratio}; CPU ${cpuUs} µs/token (all threads, /proc, 10 ms ticks)`,
      );
    }
  }

  gateway.child.kill('SIGTERM');
  await once(gateway.child, 'exit');

  if (PARTS.includes('governance')) {
    const governance = execFileSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./governance.ts', import.meta.url))],
      { cwd: ROOT, env: process.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    console.log(`\n${governance.trim()}`);
  }
}

const mode = process.argv[2];
if (mode === '--serve-bare') await serveBare(process.argv[3] ?? '{}');
else if (mode === '--serve-gateway')
  await serveGateway(
    process.argv[3] === 'policy',
    process.argv[4] === undefined ? undefined : Number(process.argv[4]),
  );
else if (mode === '--serve-direct') await serveDirect();
else await main();
