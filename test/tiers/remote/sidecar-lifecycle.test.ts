/**
 * The supervised sidecar with a small random model: start, Info, generation, deadline,
 * cancellation and crash recovery, each observed inside the sidecar through its counters.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteTierError } from '../../../src/tiers/remote/remote-tier-error.js';
import { collect, makeTier, randomModel, request, waitFor, type TierHarness } from './helpers.js';
import { flat } from '../../helpers/tier-events.js';

describe('remote tier with a spawned sidecar', () => {
  let h: TierHarness;

  before(async () => {
    h = makeTier({
      spawn: true,
      model: randomModel(),
      restart: { initialDelayMs: 50, maxDelayMs: 1000, resetAfterMs: 60_000 },
    });
    await h.tier.start();
  });

  after(async () => {
    await h.tier.close();
  });

  it('is ready only after the sidecar reports SERVING, and describes the model', () => {
    assert.equal(h.tier.health().ready, true);
    const info = h.tier.info();
    assert.equal(info.framework, 'pytorch');
    assert.equal(info.contextLength, 4096);
    assert.equal(info.vocabSize, 96);
    assert.equal(info.precision, 'f32');
    assert.ok(
      h.lines.some((l) => l.msg === 'sidecar: serving'),
      'sidecar log lines are forwarded',
    );
  });

  it('generates greedily and deterministically, with a finish event', async () => {
    const a = await collect(h.tier.generate(request([1, 5, 9, 3], 16), new AbortController().signal));
    const b = await collect(h.tier.generate(request([1, 5, 9, 3], 16), new AbortController().signal));
    assert.equal(a.tokens.length, 16);
    assert.equal(a.reason, 'length');
    assert.deepEqual(a.tokens, b.tokens);
    assert.ok(a.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)));
  });

  it("concurrent requests (more than the sidecar's slots) give the same tokens as one at a time", async () => {
    const prompts = [[1, 5, 9, 3], [2], [7, 7, 7, 7, 7, 7, 7, 7, 7], [11, 12], [40, 41, 42]];
    const alone: number[][] = [];
    for (const p of prompts)
      alone.push((await collect(h.tier.generate(request(p, 12), new AbortController().signal))).tokens);
    const together = await Promise.all(
      prompts.map((p) => collect(h.tier.generate(request(p, 12), new AbortController().signal))),
    );
    assert.deepEqual(
      together.map((r) => r.tokens),
      alone,
    );
  });

  it('seeded sampling travels through gRPC: the same seed repeats, other seeds differ', async () => {
    const run = async (seed: number) =>
      (
        await collect(
          h.tier.generate(
            request([1, 5], 24, { sampling: { temperature: 1.5, topP: 0.95, topK: 40, seed } }),
            new AbortController().signal,
          ),
        )
      ).tokens;
    const a = await run(11);
    assert.deepEqual(await run(11), a);
    const others = await Promise.all([12, 13, 14].map(run));
    assert.ok(
      others.some((o) => JSON.stringify(o) !== JSON.stringify(a)),
      'different seeds gave identical tokens',
    );
  });

  it('reports top logprobs: best first, the greedy choice on top', async () => {
    for await (const e of flat(
      h.tier.generate(request([1, 5, 9, 3], 4, { topLogprobs: 3 }), new AbortController().signal),
    )) {
      if (e.kind !== 'token') continue;
      assert.equal(e.top?.length, 3);
      const top = e.top!;
      assert.equal(top[0]!.token, e.token);
      assert.ok(Math.abs(top[0]!.logprob - e.logprob) < 1e-9);
      assert.ok(top[0]!.logprob >= top[1]!.logprob && top[1]!.logprob >= top[2]!.logprob);
    }
  });

  it('stops on a stop token without emitting it', async () => {
    const free = await collect(h.tier.generate(request([1, 5, 9, 3], 8), new AbortController().signal));
    const stopAt = free.tokens[3] as number;
    const firstIndex = free.tokens.indexOf(stopAt);
    const r = await collect(
      h.tier.generate(request([1, 5, 9, 3], 8, { stopTokens: [stopAt] }), new AbortController().signal),
    );
    assert.equal(r.reason, 'stop');
    assert.deepEqual(r.tokens, free.tokens.slice(0, firstIndex));
  });

  it('scores a sequence with the same logprobs greedy generation reported', async () => {
    const prompt = [1, 5, 9, 3];
    const g = await collect(h.tier.generate(request(prompt, 6), new AbortController().signal));
    const scores = await h.tier.score([...prompt, ...g.tokens]);
    assert.equal(scores.length, prompt.length + g.tokens.length - 1);
    const tail = Array.from(scores.slice(prompt.length - 1));
    tail.forEach((s, i) =>
      assert.ok(Math.abs(s - (g.logprobs[i] as number)) < 1e-3, `position ${i}: ${s} vs ${g.logprobs[i]}`),
    );
  });

  it('a request whose budget expires stops generating inside the sidecar', async () => {
    const before = await h.tier.fetchInfo();
    const deadline = Date.now() + 300;
    await assert.rejects(
      collect(h.tier.generate(request([1, 2, 3], 4000, { deadline }), new AbortController().signal)),
      (err: unknown) => err instanceof RemoteTierError && err.code === 'TG_REMOTE_DEADLINE',
    );
    await waitFor(
      async () => (await h.tier.fetchInfo()).counters?.activeRequests === 0,
      5000,
      'the sidecar to go idle',
    );
    const afterInfo = await h.tier.fetchInfo();
    const c0 = before.counters!;
    const c1 = afterInfo.counters!;
    assert.equal(c1.generateDeadlineExceeded - c0.generateDeadlineExceeded, 1);
    const produced = c1.tokensGenerated - c0.tokensGenerated;
    assert.ok(produced < 4000, `the sidecar stopped early (${produced} tokens)`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      (await h.tier.fetchInfo()).counters!.tokensGenerated,
      c1.tokensGenerated,
      'no tokens after the stop',
    );
  });

  it('aborting the signal cancels the call and the sidecar stops decoding', async () => {
    const before = (await h.tier.fetchInfo()).counters!;
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(async () => {
      for await (const e of flat(h.tier.generate(request([4, 5, 6], 4000), ac.signal))) {
        if (e.kind === 'token' && ++seen === 5) ac.abort(new Error('client went away'));
      }
    }, /client went away/);
    await waitFor(
      async () => (await h.tier.fetchInfo()).counters!.generateCancelled > before.generateCancelled,
      5000,
      'the sidecar to count the cancellation',
    );
    const c1 = (await h.tier.fetchInfo()).counters!;
    assert.equal(c1.activeRequests, 0);
    assert.ok(c1.tokensGenerated - before.tokensGenerated < 4000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await h.tier.fetchInfo()).counters!.tokensGenerated, c1.tokensGenerated);
  });

  it('kill -9 mid-stream: a typed error, a supervised restart, then the next request succeeds', async () => {
    const pid = h.tier.sidecarPid;
    assert.ok(pid !== undefined);
    let seen = 0;
    await assert.rejects(
      async () => {
        for await (const e of flat(h.tier.generate(request([7, 8, 9], 4000), new AbortController().signal))) {
          if (e.kind === 'token' && ++seen === 3) process.kill(pid, 'SIGKILL');
        }
      },
      (err: unknown) =>
        err instanceof RemoteTierError && err.code === 'TG_REMOTE_STREAM_BROKEN' && err.retryable,
    );
    await waitFor(() => h.tier.sidecarPid !== pid && h.tier.health().ready, 30_000, 'the restarted sidecar');
    assert.equal(h.tier.sidecarRestarts, 1);
    const metrics = await h.metrics.render();
    assert.match(metrics, /tiergate_sidecar_restarts_total\{tier="fallback"\} 1/);
    const r = await collect(h.tier.generate(request([1, 5, 9, 3], 8), new AbortController().signal));
    assert.equal(r.tokens.length, 8);
    assert.ok(h.lines.some((l) => String(l.msg).startsWith('sidecar down: sidecar killed by SIGKILL')));
  });
});
