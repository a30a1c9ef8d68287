// The executor over real echo tiers with injected faults: attempt timeouts move on before the
// first token, each tier's retry budget caps the retries its failures cause (and says so with a
// 503 when a tier left would have fitted), an attempt timeout is the upstream's, the request
// deadline ends the request with 504, and all-tiers-failed takes the last failure's status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { toApiError } from '../../src/api/errors.js';
import { buildConfig } from '../../src/config/index.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { AllTiersFailedError } from '../../src/resilience/errors.js';
import { newExecutionRecord, ResilientGeneration } from '../../src/resilience/executor.js';
import { ResilienceRuntime } from '../../src/resilience/resilience-runtime.js';
import { ByteTokenizer } from '../../src/text/byte-tokenizer.js';
import { EchoTier } from '../../src/tiers/echo/echo-tier.js';
import type { CancelSignal } from '../../src/tiers/cancellation.js';
import type { GenerateRequest, Tier, TierEvent } from '../../src/tiers/tier.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';

const logger = pino({ level: 'silent' });
const family = loadModelFamily(FAMILY_DIR);

async function runtimeWith(resilience: Record<string, unknown>): Promise<ResilienceRuntime> {
  const config = buildConfig({
    tokenizer: { kind: 'bytes' },
    tiers: { a: { kind: 'echo' }, b: { kind: 'echo' }, c: { kind: 'echo' } },
    models: { m: { tier: 'a' } },
    resilience,
  });
  const metrics = new MetricsService({ defaultMetrics: false });
  const tiers = new Map<string, Tier>();
  for (const name of ['a', 'b', 'c']) {
    const tier = new EchoTier(
      name,
      { kind: 'echo', contextLength: 256, tokenDelayMs: 0, batchTokens: 4 },
      {
        logger,
        metrics,
        family,
        tokenizer: new ByteTokenizer(),
      },
    );
    await tier.start();
    tiers.set(name, tier);
  }
  return new ResilienceRuntime(tiers, config, metrics, logger);
}

const request: GenerateRequest = {
  tokens: [...Buffer.from('abcdef')],
  sampling: { temperature: 0, topP: 1, topK: 0 },
  maxTokens: 6,
  stopTokens: [],
  topLogprobs: 0,
};

/** The tokens an executor pushes for a request. */
async function tokens(gen: ResilientGeneration, signal: CancelSignal): Promise<number[]> {
  const out: number[] = [];
  await gen.run(request, signal, (e: TierEvent) => {
    if (e.kind === 'tokens') out.push(...e.tokens);
  });
  return out;
}

const attempts = (...tiers: string[]) => tiers.map((tier) => ({ tier, deadlineMs: 0 }));

test('a tier that hangs before its first token is abandoned at its attempt timeout', async () => {
  const rt = await runtimeWith({ tiers: { a: { fault: { hangRate: 1 }, attemptTimeoutMs: 100 } } });
  const record = newExecutionRecord();
  const gen = new ResilientGeneration(rt, rt.defaultAttempts('a').concat(attempts('b')), record);
  assert.deepEqual(await tokens(gen, new AbortController().signal), [...Buffer.from('abcdef')]);
  assert.deepEqual(record.servedBy, ['b']);
  assert.deepEqual(
    record.fallbacks.map((f) => [f.from, f.to, f.cause, f.stage]),
    [['a', 'b', 'timeout', 'before_first_token']],
  );
  assert.equal(record.retries, 1);
  rt.close();
});

test('a tier that hangs mid-stream is continued elsewhere with the tokens already sent', async () => {
  const rt = await runtimeWith({
    tiers: { a: { fault: { hangRate: 1, hangAfterTokens: 2 }, attemptTimeoutMs: 100 } },
  });
  const record = newExecutionRecord();
  const gen = new ResilientGeneration(rt, attempts('a', 'b'), record);
  // Echo repeats its input, so b (given prompt + "ab") echoes from the start: what matters is
  // that exactly maxTokens tokens arrive and b was asked to continue, not to start over.
  const got = await tokens(gen, new AbortController().signal);
  assert.equal(got.length, request.maxTokens);
  assert.equal(record.continuedFrom, 'a');
  rt.close();
});

/** Runs one request and returns what it was rejected with. */
async function failure(gen: ResilientGeneration): Promise<unknown> {
  return tokens(gen, new AbortController().signal).then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
}

test("the retry budget counts per tier: a failing tier spends its own budget, not another's", async () => {
  const rt = await runtimeWith({
    retryBudget: { ratio: 0, minPerSecond: 0.1, windowMs: 10_000 }, // exactly 1 retry per tier in the window
    tiers: { a: { fault: { errorRate: 1 } }, b: { fault: { errorRate: 1 } } },
  });
  // a fails; its one retry takes the request to c.
  const first = newExecutionRecord();
  await tokens(new ResilientGeneration(rt, attempts('a', 'c'), first), new AbortController().signal);
  assert.deepEqual([first.servedBy, first.retries], [['c'], 1]);
  // a fails again: its budget is spent, and c (no prediction in a fixed list, time left) was left.
  const err = await failure(new ResilientGeneration(rt, attempts('a', 'c'), newExecutionRecord()));
  assert.equal((err as { tiers: string[] }).tiers.join(), 'a', 'c is not tried');
  assert.equal(((err as AllTiersFailedError).last as { code: string }).code, 'TIERGATE_ERR_RETRY_BUDGET');
  const api = toApiError(err);
  assert.equal(api.status, 503);
  assert.equal(api.code, 'service_unavailable');
  assert.ok((api.retryAfter ?? 0) >= 1, 'Retry-After: when a retry comes back');
  assert.match(api.message, /injected fault .*not retried because the retry budget of tier "a" is spent/);
  // b's budget is its own: a's failures did not spend it (one shared budget would refuse here).
  const third = newExecutionRecord();
  await tokens(new ResilientGeneration(rt, attempts('b', 'c'), third), new AbortController().signal);
  assert.deepEqual([third.servedBy, third.retries], [['c'], 1]);
  const text = await rt.metrics.retries.get();
  const value = (from: string, result: string): number =>
    text.values.find((v) => v.labels.from === from && v.labels.result === result)?.value ?? 0;
  assert.deepEqual(
    [value('a', 'attempted'), value('a', 'budget_exhausted'), value('b', 'attempted')],
    [1, 1, 1],
  );
  rt.close();
});

test('a retry paid for is not paid again when the tier it was for refuses at admission', async () => {
  const rt = await runtimeWith({
    retryBudget: { ratio: 0, minPerSecond: 0.1, windowMs: 10_000 }, // 1 retry per tier
    tiers: {
      a: { fault: { errorRate: 1 } },
      b: { fault: { hangRate: 1 }, admission: { maxConcurrent: 1, maxQueue: 0 } },
    },
  });
  // b's one slot is held by a request that hangs until aborted.
  const holder = new AbortController();
  const held = tokens(new ResilientGeneration(rt, attempts('b'), newExecutionRecord()), holder.signal);
  assert.equal(rt.guard('b')!.admission.running, 1);
  // a fails; its one retry is for b, which refuses (full): c takes it with the same retry.
  const record = newExecutionRecord();
  await tokens(new ResilientGeneration(rt, attempts('a', 'b', 'c'), record), new AbortController().signal);
  assert.deepEqual(record.servedBy, ['c']);
  assert.deepEqual(
    record.fallbacks.map((f) => [f.from, f.to, f.cause]),
    [
      ['a', 'b', 'fault'],
      ['b', 'c', 'shed'],
    ],
  );
  assert.equal(record.retries, 1);
  holder.abort(new Error('done'));
  await held.catch(() => undefined);
  rt.close();
});

test("a retry the budget refuses when no tier left is predicted to fit keeps the attempt's own error", async () => {
  const rt = await runtimeWith({
    retryBudget: { ratio: 0, minPerSecond: 0.1, windowMs: 10_000 },
    tiers: { a: { fault: { hangRate: 1 }, attemptTimeoutMs: 50 } },
  });
  await tokens(
    new ResilientGeneration(rt, attempts('a', 'b'), newExecutionRecord()),
    new AbortController().signal,
  );
  // b is predicted to need longer than the 10 s left: the budget's refusal cost nothing.
  const slow = [
    { tier: 'a', deadlineMs: 0 },
    { tier: 'b', deadlineMs: 0, predictedMs: 60_000 },
  ];
  const err = await failure(new ResilientGeneration(rt, slow, newExecutionRecord(), Date.now() + 10_000));
  const api = toApiError(err);
  assert.deepEqual([api.status, api.code], [504, 'upstream_timeout']);
  assert.match(api.message, /attempt on tier "a" timed out after 50 ms/);
  rt.close();
});

test("an attempt timeout with the request's deadline ahead is upstream_timeout, never deadline_exceeded", async () => {
  const rt = await runtimeWith({ tiers: { a: { fault: { hangRate: 1 }, attemptTimeoutMs: 50 } } });
  const err = await failure(
    new ResilientGeneration(rt, attempts('a'), newExecutionRecord(), Date.now() + 10_000),
  );
  const api = toApiError(err);
  assert.deepEqual([api.status, api.code, api.type], [504, 'upstream_timeout', 'server_error']);
  rt.close();
});

test('the request deadline ends a hanging request with 504', async () => {
  const rt = await runtimeWith({ tiers: { a: { fault: { hangRate: 1 } } } });
  const gen = new ResilientGeneration(rt, attempts('a', 'b'), newExecutionRecord(), Date.now() + 100);
  const err = await tokens(gen, new AbortController().signal).then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.equal(toApiError(err).status, 504);
  rt.close();
});

test('an unexplained failure of every tier is a 502', () => {
  const api = toApiError(new AllTiersFailedError(['a'], new Error('boom')));
  assert.equal(api.status, 502);
});
