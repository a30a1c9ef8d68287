/**
 * node --import tsx bench/retry-budget.ts — one gateway-wide retry budget against one budget per
 * tier (src/resilience/retry-budget.ts, docs/resilience.md "Retry budget"), on the case of
 * issue 20: a tier frozen for 10 s while another tier has ordinary transient failures.
 *
 * A replay on a simulated clock through the real budget classes, so the figures are exact and
 * the same on every machine: requests arrive at a fixed rate, one in `--main-every` on `main`,
 * the rest on `edge`; while main is frozen every attempt on it fails at its attempt timeout and asks for a
 * retry; one edge request in 20 fails at once and asks for one. Each retry is paid by the tier
 * that failed (per tier) or by the one budget (global).
 *
 *   node --import tsx bench/retry-budget.ts [--rate 20] [--seconds 30] [--freeze-from 5]
 *     [--freeze-seconds 10] [--attempt-timeout-ms 890] [--edge-failure-every 20] [--main-every 2]
 */
import { parseArgs } from 'node:util';
import { RetryBudget, TierRetryBudgets } from '../src/resilience/retry-budget.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    'freeze-from': { type: 'string', default: '5' },
    'freeze-seconds': { type: 'string', default: '10' },
    'attempt-timeout-ms': { type: 'string', default: '890' },
    'edge-failure-every': { type: 'string', default: '20' },
    'main-every': { type: 'string', default: '2' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const freezeFrom = Number(values['freeze-from']) * 1000;
const freezeTo = freezeFrom + Number(values['freeze-seconds']) * 1000;
const attemptTimeoutMs = Number(values['attempt-timeout-ms']);
const edgeFailureEvery = Number(values['edge-failure-every']);
/** One request in this many goes to main (2: half). */
const mainEvery = Number(values['main-every']);
// The gateway's defaults (src/config/resilience.ts).
const settings = { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 };

type Tier = 'main' | 'edge';
interface Event {
  readonly at: number;
  readonly kind: 'request' | 'retry';
  readonly tier: Tier;
}

/** Arrivals and the retries they ask for, in time order (a stable order for equal times). */
function events(): Event[] {
  const out: Event[] = [];
  let edgeCount = 0;
  for (let i = 0; i < rate * seconds; i++) {
    const at = (i * 1000) / rate;
    const tier: Tier = i % mainEvery === 0 ? 'main' : 'edge';
    out.push({ at, kind: 'request', tier });
    if (tier === 'main' && at >= freezeFrom && at < freezeTo)
      out.push({ at: at + attemptTimeoutMs, kind: 'retry', tier });
    if (tier === 'edge' && ++edgeCount % edgeFailureEvery === 0) out.push({ at, kind: 'retry', tier });
  }
  return out.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'request' ? -1 : 1));
}

interface Count {
  asked: number;
  allowed: number;
}

function replay(mode: 'global' | 'per tier'): Record<Tier, Count> {
  let now = 0;
  const clock = (): number => now;
  const global = new RetryBudget(settings, clock);
  const perTier = new TierRetryBudgets(settings, clock);
  const counts: Record<Tier, Count> = { main: { asked: 0, allowed: 0 }, edge: { asked: 0, allowed: 0 } };
  for (const e of events()) {
    now = e.at;
    if (e.kind === 'request') {
      if (mode === 'global') global.deposit();
      else perTier.deposit(e.tier);
      continue;
    }
    counts[e.tier].asked++;
    if (mode === 'global' ? global.tryWithdraw() : perTier.tryWithdraw(e.tier)) counts[e.tier].allowed++;
  }
  return counts;
}

console.log(
  `${rate} req/s for ${seconds} s, 1 in ${mainEvery} on main, the rest on edge; main frozen ${freezeFrom / 1000}-${freezeTo / 1000} s ` +
    `(each attempt fails at ${attemptTimeoutMs} ms); 1 edge request in ${edgeFailureEvery} fails; ` +
    `budget ratio ${settings.ratio}, ${settings.minPerSecond}/s, window ${settings.windowMs / 1000} s`,
);
for (const mode of ['global', 'per tier'] as const) {
  const c = replay(mode);
  const row = (t: Tier): string => `${t} ${c[t].allowed}/${c[t].asked}`;
  console.log(`${mode.padEnd(8)}  retries allowed/asked: ${row('main')}, ${row('edge')}`);
}
