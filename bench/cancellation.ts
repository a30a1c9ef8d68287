/**
 * node --import tsx bench/cancellation.ts — why the request path uses Cancellation
 * (src/tiers/cancellation.ts) instead of an AbortController per request: the same small
 * per-request work (a 16-token async generator that checks its signal, a listener added and
 * removed) with each, alternating, in one process. Prints time per iteration and the share
 * spent in garbage collection.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Cancellation, type CancelSignal } from '../src/tiers/cancellation.js';

const N = Number(process.env.BENCH_ITERATIONS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

async function* tokens(signal: CancelSignal): AsyncGenerator<{ token: number }> {
  for (let i = 0; i < 16; i++) {
    signal.throwIfAborted();
    yield { token: i };
  }
}

async function request(make: () => { signal: CancelSignal; abort(reason?: unknown): void }): Promise<void> {
  const c = make();
  const onAbort = (): void => undefined;
  c.signal.addEventListener('abort', onAbort, { once: true });
  for await (const t of tokens(c.signal)) void t;
  c.signal.removeEventListener('abort', onAbort);
}

const kinds = {
  AbortController: () => new AbortController(),
  Cancellation: () => new Cancellation(),
} as const;

async function measure(kind: keyof typeof kinds): Promise<{ us: number; gcShare: number }> {
  const make = kinds[kind];
  gcMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await request(make);
  const ms = performance.now() - t0;
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 20));
  return { us: (ms * 1000) / N, gcShare: gcMs / ms };
}

const results: Record<string, { us: number; gcShare: number }[]> = { AbortController: [], Cancellation: [] };
for (const kind of Object.keys(kinds) as (keyof typeof kinds)[]) await measure(kind); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of Object.keys(kinds) as (keyof typeof kinds)[]) results[kind]!.push(await measure(kind));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `per-request cancellation, ${N} iterations x ${ROUNDS} alternating rounds (medians), node ${process.version}`,
);
for (const [kind, rs] of Object.entries(results)) {
  console.log(
    `  ${kind.padEnd(16)} ${median(rs.map((r) => r.us)).toFixed(2)} µs/request, GC ${(100 * median(rs.map((r) => r.gcShare))).toFixed(0)}% of the time`,
  );
}
const ratio =
  median(results.AbortController!.map((r) => r.us)) / median(results.Cancellation!.map((r) => r.us));
console.log(`  Cancellation is ${ratio.toFixed(1)}x faster`);
