/**
 * A frozen tier under steady load, and what the per-tier retry budget costs
 * (docs/resilience.md "Retry budget"). config/tiergate.yaml with requests that carry
 * `x-tiergate-accuracy-floor: 0.999`, which routes them to main with fallback behind it, at a
 * steady rate for some seconds; first with main healthy (the baseline of the same run), then
 * with main hanging on every request (`resilience.tiers.main.fault.hangRate: 1`, attempt
 * timeout 890 ms, request deadline 20 s) until its breaker opens. Prints, for each phase, the
 * answers by status and serving tier, the 503s a spent retry budget caused
 * (a 503 whose message names the retry budget) and tiergate_retries_total by result.
 *
 *   npm run bench:frozen-tier -- [--rate 8] [--seconds 10] [--tokens 16]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { samples, startConfigGateway } from './lib/config-gateway.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    tokens: { type: 'string', default: '16' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);

interface Outcome {
  readonly status: number;
  readonly servedBy: string;
  readonly code: string;
  readonly message: string;
}

async function one(url: string, i: number): Promise<Outcome> {
  try {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tiergate-accuracy-floor': '0.999' },
      body: JSON.stringify({
        model: 'tiergate-tiny',
        prompt: `Request ${i}: once upon a time`,
        max_tokens: Number(values.tokens),
      }),
    });
    const body = (await res.json()) as { error?: { code?: string | null; message?: string } };
    return {
      status: res.status,
      servedBy: res.headers.get('x-tiergate-served-by') ?? res.headers.get('x-tiergate-tier') ?? '-',
      code: body.error?.code ?? '',
      message: body.error?.message ?? '',
    };
  } catch (err) {
    return { status: 0, servedBy: '-', code: 'client error', message: (err as Error).message };
  }
}

async function phase(label: string, overrides: Record<string, unknown>): Promise<void> {
  const { server } = await startConfigGateway(overrides);
  try {
    const warm = await one(server.url, -1); // main and fallback loaded before the clock starts
    void warm;
    const t0 = performance.now();
    const pending: Promise<Outcome>[] = [];
    for (let i = 0; i < RATE * SECONDS; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(one(server.url, i));
    }
    const outcomes = await Promise.all(pending);
    const by = new Map<string, number>();
    for (const o of outcomes) {
      const key = o.status === 200 ? `200 by ${o.servedBy}` : `${o.status} ${o.code}`;
      by.set(key, (by.get(key) ?? 0) + 1);
    }
    const failed = outcomes.filter((o) => o.status !== 200).length;
    const budget = outcomes.filter((o) => o.status === 503 && o.message.includes('retry budget')).length;
    process.stdout.write(
      `\n${label}: ${outcomes.length} requests at ${RATE}/s; failed ${failed}; 503 from a spent retry budget ${budget}\n`,
    );
    for (const [k, v] of [...by].sort()) process.stdout.write(`  ${k}: ${v}\n`);
    const retries = await samples(server.url, 'tiergate_retries_total');
    const moved = [...retries].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
    process.stdout.write(`  tiergate_retries_total: ${moved.join(', ') || 'none'}\n`);
  } finally {
    await server.shutdown();
  }
}

process.stdout.write(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`,
);
await phase('baseline, main healthy', { resilience: { requestTimeoutMs: 20_000 } });
await phase('main hangs on every request', {
  resilience: {
    requestTimeoutMs: 20_000,
    tiers: { main: { fault: { hangRate: 1 }, attemptTimeoutMs: 890 } },
  },
});
process.stdout.write(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`,
);
