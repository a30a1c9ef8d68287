/**
 * What the key limiter itself costs a request (issue 21), without HTTP: admission under an RPM
 * limit, a TPM limit and a hard daily budget on the in-process store, 16 completion tokens
 * metered one at a time, the x-ratelimit-* fields and the end, per request; and the same for a
 * key without limits (what every request of the plain gateway pays). Medians of rounds:
 *
 *   node --import tsx bench/key-limiter.ts [--requests 200000] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import { rateLimitFields } from '../src/api/rate-limit-headers.js';
import { buildConfig } from '../src/config/index.js';
import { KeyLimiter } from '../src/limits/key-limiter.js';
import { createLogger } from '../src/observability/logger.js';
import { MetricsService } from '../src/observability/metrics.js';
import { median } from './lib/median.js';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } },
});
const N = Number(values.requests);
const ROUNDS = Number(values.rounds);

function limiter(limited: boolean): KeyLimiter {
  const config = buildConfig(
    {
      family: { dir: 'models/tiny' },
      tokenizer: { kind: 'bytes' },
      tiers: { echo: { kind: 'echo' } },
      models: { m: { tier: 'echo' } },
      limits: limited
        ? {
            byScope: {
              inference: {
                requestsPerMinute: 1e9,
                tokensPerMinute: 1e9,
                budget: { tokens: 1e12, period: 'day' },
              },
            },
          }
        : {},
    },
    { env: {} },
  );
  return new KeyLimiter(() => config, new MetricsService({ defaultMetrics: false }), createLogger('silent'));
}

/** µs per request: admit, 16 tokens metered one by one, the header fields, end. */
function perRequest(l: KeyLimiter): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const a = l.admit(undefined, { promptTokens: 8, maxCompletionTokens: 16 });
    if (a instanceof Promise) throw new Error('the in-process store answers synchronously');
    for (let t = 0; t < 16; t++) a.meter?.allow(1);
    rateLimitFields(a.rateLimit);
    a.end(16);
  }
  return Number(process.hrtime.bigint() - start) / N / 1000;
}

const limited = limiter(true);
const plain = limiter(false);
const on: number[] = [];
const off: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  on.push(perRequest(limited));
  off.push(perRequest(plain));
}
console.log(`key limiter, ${N} requests × ${ROUNDS} rounds (median µs per request):`);
console.log(`  limits on (RPM, TPM, hard day budget; 16 tokens metered): ${median(on).toFixed(2)}`);
console.log(`  key without limits:                                        ${median(off).toFixed(2)}`);
await Promise.all([limited.close(), plain.close()]);
