// Unit tests of the resilience parts: admission control, retry budget, fault wrapper (around the
// real echo tier) and the breaker's stream accounting (real opossum, short real timers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { AdmissionSettings, FaultSettings } from '../../src/config/resilience.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { AdmissionController } from '../../src/resilience/admission.js';
import { FaultInjectingTier } from '../../src/resilience/fault-tier.js';
import { RetryBudget, TierRetryBudgets } from '../../src/resilience/retry-budget.js';
import { TierBreaker } from '../../src/resilience/tier-breaker.js';
import { ByteTokenizer } from '../../src/text/byte-tokenizer.js';
import { EchoTier } from '../../src/tiers/echo/echo-tier.js';
import type { GenerateRequest, TierEvent } from '../../src/tiers/tier.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';
import { flat, type FlatEvent } from '../helpers/tier-events.js';

const admission = (s: Partial<AdmissionSettings>): AdmissionSettings => ({
  maxConcurrent: 1,
  maxQueue: 1,
  initialServiceMs: 10,
  ...s,
});

test('admission: runs up to the limit, queues FIFO, sheds 429 when the queue is full', async () => {
  const a = new AdmissionController('t', admission({ maxConcurrent: 1, maxQueue: 1 }));
  const signal = new AbortController().signal;
  const r1 = await a.acquire(undefined, signal);
  const queued = a.acquire(undefined, signal);
  assert.equal(a.queued, 1);
  await assert.rejects(a.acquire(undefined, signal), { code: 'TIERGATE_ERR_SHED_QUEUE_FULL' });
  r1();
  const r2 = await queued;
  assert.equal(a.running, 1);
  r2();
  r2(); // releasing twice is harmless
  assert.equal(a.running, 0);
});

test('admission: sheds 503 at once when the expected wait outlasts the deadline', async () => {
  const a = new AdmissionController('t', admission({ maxQueue: 10, initialServiceMs: 1000 }));
  const signal = new AbortController().signal;
  const r = await a.acquire(undefined, signal);
  await assert.rejects(
    a.acquire(Date.now() + 100, signal),
    (err: { code: string; retryAfterSeconds: number }) => {
      assert.equal(err.code, 'TIERGATE_ERR_SHED_DEADLINE');
      assert.ok(err.retryAfterSeconds >= 1);
      return true;
    },
  );
  assert.equal(a.queued, 0);
  r();
});

test('admission: an aborted waiter leaves the queue; a raised limit admits waiters', async () => {
  const a = new AdmissionController('t', admission({ maxQueue: 5 }));
  const r = await a.acquire(undefined, new AbortController().signal);
  const gone = new AbortController();
  const w1 = a.acquire(undefined, gone.signal);
  const w2 = a.acquire(undefined, new AbortController().signal);
  gone.abort(new Error('client left'));
  await assert.rejects(w1, /client left/);
  assert.equal(a.queued, 1);
  a.update(admission({ maxConcurrent: 2, maxQueue: 5 }));
  (await w2)();
  r();
});

test('retry budget: retries stay within ratio × requests plus the floor, and recover over time', () => {
  let now = 0;
  const b = new RetryBudget({ ratio: 0.2, minPerSecond: 0, windowMs: 1000 }, () => now);
  for (let i = 0; i < 10; i++) b.deposit();
  assert.equal(b.tryWithdraw(), true);
  assert.equal(b.tryWithdraw(), true);
  assert.equal(b.tryWithdraw(), false, '20 % of 10 requests is 2 retries');
  now = 1100; // the window has passed: old deposits and withdrawals expired
  assert.equal(b.tryWithdraw(), false);
  for (let i = 0; i < 5; i++) b.deposit();
  assert.equal(b.tryWithdraw(), true);
  const floor = new RetryBudget({ ratio: 0, minPerSecond: 2, windowMs: 1000 }, () => now);
  assert.equal(floor.tryWithdraw(), true);
  assert.equal(floor.tryWithdraw(), true);
  assert.equal(floor.tryWithdraw(), false);
});

test("retry budgets per tier: one tier's retries leave the others' budgets whole; refillMs says when one comes back", () => {
  let now = 0;
  const b = new TierRetryBudgets({ ratio: 0.5, minPerSecond: 0, windowMs: 1000 }, () => now);
  for (let i = 0; i < 4; i++) b.deposit('main');
  b.deposit('edge');
  b.deposit('edge');
  assert.equal(b.tryWithdraw('main'), true);
  now = 250;
  assert.equal(b.tryWithdraw('main'), true);
  assert.equal(b.tryWithdraw('main'), false, "half of main's 4 requests");
  assert.equal(b.tryWithdraw('edge'), true, 'edge keeps its own share');
  // main's oldest retry (taken at 0) leaves the 1000 ms window at 1000.
  now = 400;
  assert.equal(b.refillMs('main'), 600);
  b.update({ ratio: 0.5, minPerSecond: 10, windowMs: 1000 });
  assert.equal(b.tryWithdraw('main'), true, 'a reload applies to every tier');
});

function echoTier(): EchoTier {
  return new EchoTier(
    'e',
    { kind: 'echo', contextLength: 256, tokenDelayMs: 0, batchTokens: 32 },
    {
      logger: pino({ level: 'silent' }),
      metrics: new MetricsService({ defaultMetrics: false }),
      family: loadModelFamily(FAMILY_DIR),
      tokenizer: new ByteTokenizer(),
    },
  );
}

const request: GenerateRequest = {
  tokens: [...Buffer.from('hello world')],
  sampling: { temperature: 0, topP: 1, topK: 0 },
  maxTokens: 8,
  stopTokens: [],
  topLogprobs: 0,
};
const noFault: FaultSettings = {
  errorRate: 0,
  delayRate: 0,
  delayMs: 0,
  failAfterTokensRate: 0,
  failAfterTokens: 0,
  hangRate: 0,
  hangAfterTokens: 0,
};

/** The stream one token per event (the echo tier sends its tokens in one batch). */
async function drain(events: AsyncIterable<TierEvent>): Promise<FlatEvent[]> {
  const out: FlatEvent[] = [];
  for await (const e of flat(events)) out.push(e);
  return out;
}

test('fault wrapper: off passes through; error, fail-after-N and hang behave as configured', async () => {
  const inner = echoTier();
  await inner.start();
  let settings = noFault;
  const seen: string[] = [];
  const tier = new FaultInjectingTier(
    inner,
    () => settings,
    (k) => seen.push(k),
  );
  const plain = await drain(tier.generate(request, new AbortController().signal));
  assert.equal(plain.length, 9);

  settings = { ...noFault, errorRate: 1 };
  await assert.rejects(drain(tier.generate(request, new AbortController().signal)), {
    code: 'TIERGATE_ERR_FAULT_INJECTED',
  });

  settings = { ...noFault, failAfterTokensRate: 1, failAfterTokens: 3 };
  const got: FlatEvent[] = [];
  await assert.rejects(async () => {
    for await (const e of flat(tier.generate(request, new AbortController().signal))) got.push(e);
  }, /after 3 tokens/);
  assert.equal(got.length, 3);

  settings = { ...noFault, hangRate: 1, hangAfterTokens: 2 };
  const abort = new AbortController();
  const hung: FlatEvent[] = [];
  const run = (async () => {
    for await (const e of flat(tier.generate(request, abort.signal))) hung.push(e);
  })();
  await sleep(50);
  assert.equal(hung.length, 2, 'two tokens, then nothing');
  abort.abort(new Error('deadline'));
  await assert.rejects(run, /deadline/);
  assert.deepEqual(seen, ['error', 'fail_after_tokens', 'hang']);
});

test('breaker: a stream counts when it ends; opens at the threshold, half-opens, one trial closes it', async () => {
  const events: string[] = [];
  const b = new TierBreaker(
    't',
    {
      enabled: true,
      errorThresholdPercentage: 50,
      volumeThreshold: 2,
      resetTimeoutMs: 100,
      rollingWindowMs: 1000,
      rollingBuckets: 10,
    },
    (e) => events.push(e),
  );
  const t1 = b.tryAcquire()!;
  const t2 = b.tryAcquire()!;
  assert.equal(b.state, 'closed', 'streams that have not ended count for nothing yet');
  t1.failure(new Error('x'));
  t1.success(); // later outcomes of one ticket are ignored
  await sleep(0);
  assert.equal(b.state, 'closed', 'below the volume threshold');
  t2.failure(new Error('y'));
  await sleep(0);
  assert.equal(b.state, 'open');
  assert.equal(b.tryAcquire(), undefined, 'open: rejected before any work');
  await sleep(150);
  assert.equal(b.state, 'half_open');
  const trial = b.tryAcquire()!;
  assert.equal(b.tryAcquire(), undefined, 'one trial at a time');
  trial.success();
  await sleep(0);
  assert.equal(b.state, 'closed');
  const neutral = b.tryAcquire()!;
  neutral.neutral();
  await sleep(0);
  assert.equal(b.state, 'closed');
  assert.ok(
    events.includes('open') &&
      events.includes('half_open') &&
      events.includes('close') &&
      events.includes('reject'),
  );
  b.shutdown();
});
