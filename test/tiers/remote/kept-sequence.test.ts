/**
 * Kept sequences on the PyTorch sidecar (the KeptSequence RPC, src/tiers/remote/remote-kept-sequence.ts)
 * with the family's real FP32 model (models/tiny): drafts and verifies agree with the tier's own
 * greedy generation, sampling acceptance agrees with src/text/speculative-sampling.ts on the
 * tier's own distribution, and closing, aborting or the deadline frees the sidecar's sequence
 * (seen in its counters). A `tiergate worker` does not offer them; a balanced tier pins each
 * sequence to an address that does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../../src/text/sampling.js';
import { verifyPosition } from '../../../src/text/speculative-sampling.js';
import type { KeptSequence, OpenSequenceOptions, VerifyOptions } from '../../../src/tiers/kept-sequence.js';
import { buildConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/observability/logger.js';
import { MetricsService } from '../../../src/observability/metrics.js';
import { BalancedRemoteTier } from '../../../src/tiers/remote/balanced-remote-tier.js';
import { RemoteTierError } from '../../../src/tiers/remote/remote-tier-error.js';
import { SIDECAR_DIR } from '../../../src/tiers/remote/sidecar-supervisor.js';
import { startWorker, type RunningWorker } from '../../../src/worker/worker-server.js';
import {
  captureLogger,
  collect,
  family,
  FAMILY_DIR,
  GREEDY,
  hasFamily,
  makeTier,
  PYTHON,
  randomModel,
  readJson,
  remoteConfig,
  REPO,
  request,
  waitFor,
  type TierHarness,
} from './helpers.js';

interface Golden {
  prompts: { text: string; ids: number[] }[];
}

const OPEN: OpenSequenceOptions = { stopTokens: [] };
const GREEDY_VERIFY: VerifyOptions = { sampling: GREEDY, seed: 0, topLogprobs: 0, logprobs: true };

describe(
  'kept sequences on the sidecar (family FP32 model)',
  { skip: hasFamily() ? false : 'models/tiny not built (npm run models:build)' },
  () => {
    let h: TierHarness;
    let prompts: number[][];
    const open: KeptSequence[] = [];

    const openSeq = async (signal: AbortSignal = new AbortController().signal, options = OPEN) => {
      const kept = await h.tier.openSequence!(options, signal);
      open.push(kept);
      return kept;
    };
    const greedy = async (prompt: readonly number[], n: number): Promise<number[]> =>
      (await collect(h.tier.generate(request(prompt, n), new AbortController().signal))).tokens;
    const openCount = async (): Promise<number> =>
      (await h.tier.fetchInfo()).counters?.keptSequencesOpen ?? -1;

    before(async () => {
      prompts = readJson<Golden>(join(FAMILY_DIR, 'golden.json')).prompts.map((p) => p.ids);
      h = makeTier({ spawn: true, model: 'pytorch-fp32', required: true, maxConcurrent: 4 }, family());
      await h.tier.start();
    });

    after(async () => {
      for (const k of open) k.close();
      await h.tier.close();
    });

    it('is offered because the sidecar lists kept_sequence', async () => {
      assert.ok((await h.tier.fetchInfo()).capabilities.includes('kept_sequence'));
      assert.equal(typeof h.tier.openSequence, 'function');
    });

    it("a draft equal to the tier's greedy continuation is fully accepted; the bonus is the next greedy token", async () => {
      for (const prompt of prompts.slice(0, 3)) {
        const want = await greedy(prompt, 9);
        const kept = await openSeq();
        const r = await kept.verify({ keep: 0, append: prompt }, want.slice(0, 8), GREEDY_VERIFY);
        assert.equal(r.held, prompt.length + 8);
        assert.equal(r.positions.length, 9);
        assert.deepEqual(
          r.positions.slice(0, 8).map((p) => p.accept),
          Array(8).fill(1),
        );
        assert.deepEqual(
          r.positions.map((p) => p.token),
          want,
        );
        assert.equal(r.positions[8]!.accept, 0);
        assert.ok(Number.isNaN(r.positions[8]!.draftLogprob));
        assert.ok(r.positions.every((p) => p.tokenLogprob <= 0 && Number.isFinite(p.tokenLogprob)));
        kept.close();
      }
    });

    it('a wrong draft token is rejected with the greedy replacement', async () => {
      const prompt = prompts[0]!;
      const want = await greedy(prompt, 4);
      const wrong = (want[2]! + 1) % h.tier.info().vocabSize;
      const kept = await openSeq();
      const r = await kept.verify(
        { keep: 0, append: prompt },
        [want[0]!, want[1]!, wrong, want[3]!],
        GREEDY_VERIFY,
      );
      assert.deepEqual(r.positions.map((p) => p.accept).slice(0, 3), [1, 1, 0]);
      assert.equal(r.positions[2]!.token, want[2]);
      assert.ok(r.positions[2]!.draftLogprob < r.positions[2]!.tokenLogprob);
      kept.close();
    });

    it('rollback then continue equals plain greedy generation', async () => {
      const prompt = prompts[1]!;
      const want = await greedy(prompt, 14);
      const kept = await openSeq();
      // Drafting from the prompt gives the greedy tokens; the last one stays unfed.
      const d = await kept.draft({ keep: 0, append: prompt }, 4);
      assert.deepEqual(d.tokens, want.slice(0, 4));
      assert.equal(d.held, prompt.length + 3);
      // A verify that rejects at index 1 leaves the wrong tail in the cache...
      const wrong = (want[4]! + 7) % h.tier.info().vocabSize;
      const v = await kept.verify(
        { keep: d.held, append: [want[3]!] },
        [want[4]!, wrong, 3, 4],
        GREEDY_VERIFY,
      );
      assert.deepEqual(
        v.positions.map((p) => p.accept),
        [1, 0, 0, 0, 0],
      );
      assert.equal(v.positions[1]!.token, want[5]);
      // ...which the next edit rolls back: keep through the accepted token, append the replacement.
      const keep = prompt.length + 5;
      const next = await kept.draft({ keep, append: [want[5]!] }, 5);
      assert.deepEqual(next.tokens, want.slice(6, 11));
      // Rolling back into tokens it already held (keep < held, nothing appended) works too.
      const again = await kept.draft({ keep: prompt.length + 2, append: [] }, 3);
      assert.deepEqual(again.tokens, want.slice(2, 5));
      const last = await kept.verify(
        { keep: again.held, append: [want[4]!] },
        want.slice(5, 13),
        GREEDY_VERIFY,
      );
      assert.deepEqual(
        last.positions.map((p) => p.token),
        want.slice(5, 14),
      );
      kept.close();
    });

    it('a drafted stop token ends the draft', async () => {
      const prompt = prompts[2]!;
      const want = await greedy(prompt, 6);
      const kept = await openSeq(undefined, { stopTokens: [want[2]!] });
      const d = await kept.draft({ keep: 0, append: prompt }, 6);
      assert.deepEqual(d.tokens, want.slice(0, want.indexOf(want[2]!) + 1));
      kept.close();
    });

    it("sampling acceptance and replacements equal src/text/speculative-sampling.ts on the tier's own distribution", async () => {
      const prompt = prompts[0]!;
      const draft = await greedy(prompt, 5);
      draft[3] = (draft[3]! + 11) % h.tier.info().vocabSize; // one unlikely token too
      const vocab = h.tier.info().vocabSize;
      const settings = [
        { temperature: 1, topP: 1, topK: 0 },
        { temperature: 0.7, topP: 1, topK: 0 },
        { temperature: 0.8, topP: 0.9, topK: 40 },
        { temperature: 1.3, topP: 0.5, topK: 0 },
      ];
      // The tier's own log-probabilities of the draft (Score), for the untransformed case.
      const scored = await h.tier.score([...prompt, ...draft]);
      for (const sampling of settings) {
        for (const seed of [1, 2, 3]) {
          const kept = await openSeq();
          const options: VerifyOptions = { sampling, seed, topLogprobs: vocab, logprobs: true };
          const r = await kept.verify({ keep: 0, append: prompt }, draft, options);
          kept.close();
          // The whole raw distribution (every token's logprob) at each position, run through the
          // gateway's verifyPosition with the same seed: same acceptance, same emitted tokens.
          const rng = createRng(seed);
          r.positions.forEach((p, i) => {
            const row = new Float64Array(vocab);
            for (const t of p.top ?? []) row[t.token] = t.logprob;
            assert.equal(p.top?.length, vocab);
            const ts = verifyPosition(row, draft[i], { sampling, topLogprobs: 0, logprobs: true }, rng);
            const where = `T=${sampling.temperature} top_p=${sampling.topP} top_k=${sampling.topK} seed=${seed} position ${i}`;
            assert.ok(Math.abs(ts.accept - p.accept) < 1e-9, `${where}: accept ${p.accept} vs ${ts.accept}`);
            assert.equal(p.token, ts.token, where);
            if (i < draft.length) {
              assert.ok(Math.abs(p.draftLogprob - (row[draft[i]!] as number)) < 1e-12, where);
              // At temperature 1 without filters, accepting is exactly p(draft token).
              if (sampling.temperature === 1 && sampling.topK === 0 && sampling.topP === 1)
                assert.ok(Math.abs(p.accept - Math.exp(scored[prompt.length - 1 + i]!)) < 1e-4, where);
            }
          });
          assert.ok(
            r.positions.some((p) => p.accept > 0 && p.accept < 1),
            'a sampling case in between',
          );
        }
      }
    });

    it('close, abort and the deadline free the sidecar sequence', async () => {
      assert.equal(await openCount(), 0);
      const a = await openSeq();
      await a.draft({ keep: 0, append: prompts[0]! }, 2);
      assert.equal(await openCount(), 1);
      a.close();
      await waitFor(async () => (await openCount()) === 0, 5_000, 'close to free the sequence');
      await assert.rejects(a.draft({ keep: 0, append: [1] }, 1), RemoteTierError);

      const controller = new AbortController();
      const b = await openSeq(controller.signal);
      assert.equal(await openCount(), 1);
      const reason = new Error('client went away');
      const pending = b.draft({ keep: 0, append: prompts[1]! }, 64);
      controller.abort(reason);
      await assert.rejects(pending, (err) => err === reason);
      await waitFor(async () => (await openCount()) === 0, 5_000, 'abort to free the sequence');

      const c = await openSeq(undefined, { stopTokens: [], deadline: Date.now() + 400 });
      await c.draft({ keep: 0, append: prompts[2]! }, 1);
      await new Promise((r) => setTimeout(r, 600));
      await assert.rejects(c.draft({ keep: 0, append: prompts[2]! }, 1), (err) => {
        assert.ok(err instanceof RemoteTierError);
        assert.equal(err.code, 'TG_REMOTE_DEADLINE');
        return true;
      });
      await waitFor(async () => (await openCount()) === 0, 5_000, 'the deadline to free the sequence');
    });

    it('a bad edit is a bad request and ends the sequence', async () => {
      const kept = await openSeq();
      const d = await kept.draft({ keep: 0, append: prompts[0]! }, 2);
      await assert.rejects(kept.draft({ keep: d.held + 5, append: [1] }, 1), (err) => {
        assert.ok(err instanceof RemoteTierError);
        assert.equal(err.code, 'TG_REMOTE_BAD_REQUEST');
        assert.match(err.message, /not within the \d+ tokens the sequence holds/);
        return true;
      });
      await waitFor(async () => (await openCount()) === 0, 5_000, 'the failed sequence to be freed');
    });
  },
);

describe('kept sequences across addresses, and a worker that does not keep them', () => {
  const logger = createLogger('silent');
  let worker: RunningWorker;
  let sidecar: ChildProcess;
  let sidecarAddress: string;

  before(async () => {
    const config = buildConfig(
      {
        logging: { level: 'silent' },
        tokenizer: { kind: 'bytes' },
        family: { dir: 'models/tiny' },
        tiers: { echo: { kind: 'echo', contextLength: 512 } },
        models: { e: { tier: 'echo' } },
      },
      { baseDir: REPO, env: {} },
    );
    worker = await startWorker(
      config,
      { tier: 'echo', host: '127.0.0.1', port: 0, shutdownGraceMs: 500 },
      logger,
    );
    sidecar = spawn(PYTHON, ['-m', 'tiergate_sidecar', '--model', randomModel(), '--listen', '127.0.0.1:0'], {
      cwd: SIDECAR_DIR,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    sidecarAddress = await new Promise<string>((resolve, reject) => {
      createInterface({ input: sidecar.stderr! }).on('line', (line) => {
        const record = JSON.parse(line) as { msg: string; address?: string };
        if (record.msg === 'listening' && record.address !== undefined) resolve(record.address);
      });
      sidecar.on('exit', (code) => reject(new Error(`sidecar exited with ${code}`)));
    });
  });

  after(async () => {
    sidecar.kill('SIGTERM');
    await worker.shutdown();
  });

  it("a worker's remote tier offers no kept sequences (its Info does not list them)", async () => {
    const h = makeTier({ address: worker.address, required: true });
    await h.tier.start();
    try {
      assert.equal((await h.tier.fetchInfo()).capabilities.includes('kept_sequence'), false);
      assert.equal(h.tier.openSequence, undefined);
    } finally {
      await h.tier.close();
    }
  });

  it('a balanced tier pins each sequence to an address that keeps them, counted there until closed', async () => {
    const { logger: log } = captureLogger();
    const tier = new BalancedRemoteTier(
      'fallback',
      remoteConfig({ addresses: [worker.address, sidecarAddress], healthIntervalMs: 100, required: true }),
      { logger: log, metrics: new MetricsService({ defaultMetrics: false }), family: family() },
    );
    await tier.start();
    try {
      await waitFor(
        () => Object.values(tier.endpointLoad()).every((e) => e.ready) && tier.openSequence !== undefined,
        10_000,
        'both addresses serving',
      );
      const first = await tier.openSequence!(OPEN, new AbortController().signal);
      const controller = new AbortController();
      const second = await tier.openSequence!(OPEN, controller.signal);
      assert.deepEqual(tier.endpointLoad()[sidecarAddress]?.outstanding, 2);
      assert.equal(tier.endpointLoad()[worker.address]?.outstanding, 0);
      const d = await first.draft({ keep: 0, append: [1, 5, 9, 3] }, 4);
      assert.equal(d.tokens.length, 4);
      first.close();
      controller.abort(new Error('gone'));
      assert.equal(tier.endpointLoad()[sidecarAddress]?.outstanding, 0);
      await assert.rejects(second.draft({ keep: 0, append: [1] }, 1));
    } finally {
      await tier.close();
    }
  });
});
