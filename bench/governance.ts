/**
 * What per-key limits and tracing cost (issue 21): `npm run bench:gateway` runs it as its
 * `governance` part (BENCH_PARTS), or alone: `npm run build && node --import tsx bench/governance.ts`.
 *
 * Servers, each the compiled gateway (dist/) in a child process of its own on the zero-work echo
 * tier, logging at info as in production:
 * - `gw`: the plain gateway (no key limits configured, tracing off);
 * - `limits`: every request under key limits on the in-process store, with a tokens-per-minute
 *   limit and a hard daily budget, so each request takes its counters and is metered as its
 *   tokens come (limits far above the load, so nothing is refused);
 * - `tracing`: tracing on at 100% sampling, exporting OTLP/HTTP to a sink in this process;
 * - `before` (with BENCH_BEFORE_DIST, the dist/ of a commit before issue 21, built by the
 *   caller): the same plain gateway without the limits and tracing code, to show that with both
 *   off the gateway costs what it cost before.
 *
 * Measured per round, servers in rotating order: the highest rate (autocannon, unthrottled, 32
 * connections) and open-loop fixed-rate latency (bench/lib/open-loop.ts) at BENCH_GOV_RATE.
 * Figures are medians of rounds; ratios are each round's ratio to `gw` in that round, then their
 * median. Load average is printed before and after.
 *
 * Options (env): BENCH_ROUNDS (3), BENCH_SECONDS (4), BENCH_GOV_RATE (1000), BENCH_BEFORE_DIST,
 * BENCH_PIN (1: servers on CPU 1, this process on CPU 0, with taskset).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median } from './lib/median.js';
import { openLoop } from './lib/open-loop.js';
import { autocannon, cpuSeconds, hasTaskset } from './lib/server-bench.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const RATE = Number(process.env.BENCH_GOV_RATE ?? 1000);
const BEFORE = process.env.BENCH_BEFORE_DIST;
const PIN = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && hasTaskset();
const REQUEST = { model: 'tiergate-echo', prompt: 'The county grand jury said Friday', max_tokens: 16 };

type Variant = 'gw' | 'limits' | 'tracing' | 'before';

/** `--serve <variant> <dist> [otlp endpoint]`: one gateway from a compiled dist/. */
async function serve(variant: Variant, dist: string, endpoint: string | undefined): Promise<void> {
  const load = (path: string): Promise<unknown> => import(`${dist}/${path}`);
  const { buildConfig } = (await load('config/index.js')) as typeof import('../src/config/index.js');
  const { createLogger } = (await load(
    'observability/logger.js',
  )) as typeof import('../src/observability/logger.js');
  const { startServer } = (await load('server.js')) as typeof import('../src/server.js');
  const extra: Record<string, unknown> =
    variant === 'limits'
      ? {
          limits: {
            byScope: {
              inference: {
                requestsPerMinute: 1_000_000_000,
                tokensPerMinute: 1_000_000_000,
                budget: { tokens: 1_000_000_000_000, period: 'day' },
              },
            },
          },
        }
      : variant === 'tracing'
        ? { tracing: { enabled: true, endpoint, samplingRatio: 1 } }
        : {};
  const config = buildConfig(
    {
      server: { port: 0 },
      logging: { level: 'info' },
      family: { dir: 'models/tiny' },
      tokenizer: { kind: 'gguf' },
      tiers: { echo: { kind: 'echo' } },
      models: { 'tiergate-echo': { tier: 'echo' } },
      ...extra,
    },
    { baseDir: ROOT, env: {} },
  );
  const server = await startServer(config, createLogger(config.logging.level));
  process.stderr.write(`LISTENING ${server.url}\n`);
}

interface Server {
  readonly variant: Variant;
  readonly child: ChildProcess;
  readonly url: string;
}

function start(variant: Variant, dist: string, endpoint: string): Promise<Server> {
  const args = ['--max-semi-space-size=64', '--import', 'tsx', fileURLToPath(import.meta.url)];
  args.push('--serve', variant, dist, endpoint);
  const [cmd, argv] = PIN ? ['taskset', ['-c', '1', process.execPath, ...args]] : [process.execPath, args];
  // stdout (the JSON log lines) to /dev/null: pino still writes every line.
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString();
      const m = /LISTENING (\S+)/.exec(seen);
      if (m?.[1] !== undefined) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve({ variant, child, url: m[1] });
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${variant} exited (${code}): ${seen.slice(-2000)}`)));
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; USER_HZ 100). */

/** The highest rate, and the server's CPU µs per request during it (steadier than rates under background load). */
async function highest(server: Server): Promise<{ rps: number; cpuUs: number }> {
  const cpu0 = cpuSeconds(server.child.pid);
  const r = await autocannon({
    url: `${server.url}/v1/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(REQUEST),
    connections: 32,
    duration: SECONDS,
  });
  if (r.errors + r.non2xx + r.timeouts > 0)
    throw new Error(`${server.variant}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return {
    rps: r.requests.average,
    cpuUs: ((cpuSeconds(server.child.pid) - cpu0) * 1e6) / Math.max(1, r.requests.total),
  };
}

async function fixed(server: Server): Promise<{ p50: number; p99: number; errors: number }> {
  const r = await openLoop({
    url: `${server.url}/v1/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(REQUEST),
    rate: RATE,
    durationSeconds: SECONDS,
    connections: 16,
    warmupSeconds: 1,
  });
  return { p50: r.latency.p50, p99: r.latency.p99, errors: r.errors };
}

async function main(): Promise<void> {
  // The OTLP sink: reads and drops each export, counting them (the tracing server must export).
  let exports = 0;
  let exportBytes = 0;
  const sink = createServer((req, res) => {
    req.on('data', (d: Buffer) => (exportBytes += d.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const endpoint = `http://127.0.0.1:${(sink.address() as { port: number }).port}/v1/traces`;
  const dist = `${ROOT}dist`;
  const variants: Variant[] = [
    'gw',
    'limits',
    'tracing',
    ...(BEFORE === undefined ? [] : ['before' as const]),
  ];
  const servers = await Promise.all(variants.map((v) => start(v, v === 'before' ? BEFORE! : dist, endpoint)));
  if (PIN) execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  console.log(
    `tiergate governance bench — ${ROUNDS} rotating rounds of ${SECONDS} s per point; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ' ',
      )} on ${cpus().length} CPUs; ${PIN ? 'servers on CPU 1, load generator on CPU 0' : 'no pinning'}`,
  );
  console.log(
    '  gw: plain gateway (no key limits, tracing off); limits: RPM, TPM and a hard daily budget on every request (in-process store);\n' +
      `  tracing: 100% sampled, OTLP/HTTP to a local sink${BEFORE === undefined ? '' : `; before: ${BEFORE} (before issue 21)`}`,
  );
  // JIT warm-up, not measured.
  for (const s of servers) await highest(s);
  const rps = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const lat = new Map<Variant, { p50: number; p99: number }[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
    for (const s of order) lat.get(s.variant)!.push(await fixed(s));
    for (const s of order) {
      const h = await highest(s);
      rps.get(s.variant)!.push(h.rps);
      cpu.get(s.variant)!.push(h.cpuUs);
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
  }
  const gwRps = rps.get('gw')!;
  const gwCpu = median(cpu.get('gw')!);
  const gwLat = lat.get('gw')!;
  console.log(
    `\nhighest rate (unthrottled, 32 connections) and open loop at ${RATE}/s (ms from each request's due time), medians of rounds`,
  );
  for (const v of variants) {
    const r = rps.get(v)!;
    const l = lat.get(v)!;
    const ratios = r.map((x, i) => x / gwRps[i]!);
    const p50 = median(l.map((x) => x.p50));
    const p99 = median(l.map((x) => x.p99));
    const added =
      v === 'gw'
        ? ''
        : `; added p50 ${median(l.map((x, i) => x.p50 - gwLat[i]!.p50)).toFixed(3)} p99 ${median(l.map((x, i) => x.p99 - gwLat[i]!.p99)).toFixed(3)}`;
    console.log(
      `  ${v.padEnd(8)} ${median(r).toFixed(0).padStart(6)} req/s${v === 'gw' ? '' : `, ratio to gw ${median(ratios).toFixed(3)} (rounds: ${ratios.map((x) => x.toFixed(3)).join(', ')})`}; server CPU ${median(cpu.get(v)!).toFixed(0)} µs/req${v === 'gw' ? '' : ` (${(median(cpu.get(v)!) / gwCpu).toFixed(2)}x gw)`}; p50 ${p50.toFixed(3)} p99 ${p99.toFixed(3)}${added}`,
    );
  }
  console.log(`  OTLP sink received ${exports} exports, ${(exportBytes / 1e6).toFixed(1)} MB`);
  console.log(
    `load average after ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  for (const s of servers) s.child.kill('SIGTERM');
  await Promise.all(servers.map((s) => once(s.child, 'exit')));
  sink.close();
}

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant, process.argv[4]!, process.argv[5]);
else await main();
