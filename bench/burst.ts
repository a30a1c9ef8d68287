/**
 * A burst beyond the routed tier's capacity (docs/resilience.md "Overflow before shedding"):
 * N concurrent completions on the routed model of config/tiergate.yaml (edge → main → fallback),
 * all sent at once. Prints, per tier, the requests it served beside what it can hold at once
 * (its capacity plus its queue: the baseline a burst can fill), the 429/503 answers (each should
 * say that every tier of the request's plan refused it) and tiergate_overflow_total by tier pair.
 *
 *   npm run bench:burst -- [--requests 500] [--tokens 16] [--model tiergate-tiny] [--runs 1]
 */
import { parseArgs } from 'node:util';
import { samples, startConfigGateway } from './lib/config-gateway.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '500' },
    tokens: { type: 'string', default: '16' },
    model: { type: 'string', default: 'tiergate-tiny' },
    runs: { type: 'string', default: '1' },
  },
});
const N = Number(values.requests);
const TOKENS = Number(values.tokens);

interface Outcome {
  readonly status: number;
  readonly servedBy: string;
  readonly retryAfter: boolean;
  readonly message: string;
}

async function one(url: string, i: number): Promise<Outcome> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: values.model,
      prompt: `Burst request ${i}: once upon a time`,
      max_tokens: TOKENS,
    }),
  });
  const body = (await res.json()) as { error?: { message?: string } };
  return {
    status: res.status,
    servedBy: res.headers.get('x-tiergate-served-by') ?? res.headers.get('x-tiergate-tier') ?? '-',
    retryAfter: res.headers.has('retry-after'),
    message: body.error?.message ?? '',
  };
}

const { server, config } = await startConfigGateway();
try {
  const tiers = [...server.gateway.tiers.values()];
  // One request per tier first, so that no tier is still warming up when the burst lands.
  for (const t of tiers) {
    const model = `${values.model}-${t.name}`;
    await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: 'warm up', max_tokens: 2 }),
    });
  }
  const plan = ['edge', 'main', 'fallback'];
  process.stdout.write(
    `load average ${(await import('node:os'))
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  for (let run = 1; run <= Number(values.runs); run++) {
    const before = await samples(server.url, 'tiergate_overflow_total');
    const t0 = performance.now();
    const outcomes = await Promise.all(Array.from({ length: N }, (_, i) => one(server.url, i)));
    const took = performance.now() - t0;
    const after = await samples(server.url, 'tiergate_overflow_total');
    process.stdout.write(
      `\nrun ${run}: ${N} concurrent requests of ${TOKENS} tokens on ${values.model}, ${(took / 1000).toFixed(1)} s\n`,
    );
    process.stdout.write('tier      served  can hold at once (capacity + queue)\n');
    for (const name of plan) {
      const info = server.gateway.tiers.get(name)?.info();
      const served = outcomes.filter((o) => o.status === 200 && o.servedBy === name).length;
      // The queue admission holds for the tier (src/resilience/resilience-runtime.ts).
      const queue =
        config.resilience.tiers[name]?.admission?.maxQueue ??
        info?.maxQueue ??
        config.resilience.defaults.admission.maxQueue;
      const capacity = info?.capacity ?? 0;
      process.stdout.write(
        `${name.padEnd(9)} ${String(served).padStart(6)}  ${capacity + queue} (${capacity} + ${queue})\n`,
      );
    }
    const shed = outcomes.filter((o) => o.status === 429 || o.status === 503);
    // Shed only when every tier of the request's plan refused: the error says so and names each.
    const namingAll = shed.filter((o) =>
      o.message.startsWith('no tier of the plan can take the request'),
    ).length;
    const other = outcomes.filter((o) => o.status !== 200 && o.status !== 429 && o.status !== 503);
    process.stdout.write(
      `shed: ${shed.filter((o) => o.status === 429).length} x 429, ${shed.filter((o) => o.status === 503).length} x 503; ` +
        `with Retry-After ${shed.filter((o) => o.retryAfter).length}; refused by every tier of their plan ${namingAll}; other errors ${other.length}\n`,
    );
    for (const o of other.slice(0, 3)) process.stdout.write(`  ${o.status} ${o.message}\n`);
    process.stdout.write('tiergate_overflow_total, this run: ');
    const moved = [...after]
      .map(([k, v]) => `${k} ${v - (before.get(k) ?? 0)}`)
      .filter((s) => !s.endsWith(' 0'));
    process.stdout.write(`${moved.join(', ') || 'none'}\n`);
  }
} finally {
  await server.shutdown();
}
