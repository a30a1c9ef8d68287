import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildConfig, type RemoteTierConfig } from '../../src/config/index.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { createLogger } from '../../src/observability/logger.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { HealthProbe } from '../../src/tiers/remote/health-probe.js';
import { channelOptions } from '../../src/tiers/remote/proto-clients.js';
import { RemoteTier } from '../../src/tiers/remote/remote-tier.js';
import type { GenerateRequest } from '../../src/tiers/tier.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker-server.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';
import { workerInfo } from './worker-process.js';
import { flat, type FlatEvent } from '../helpers/tier-events.js';

/**
 * The worker's tier.proto server (in process, real gRPC on loopback) driven by the gateway's own
 * RemoteTier client: output, cancellation, deadlines and health, checked on the worker's counters.
 */
describe('tier worker: the tier.proto contract', () => {
  const config = buildConfig(
    {
      logging: { level: 'silent' },
      tokenizer: { kind: 'bytes' },
      family: { dir: 'models/tiny' },
      tiers: { slow: { kind: 'echo', contextLength: 512, tokenDelayMs: 20 } },
      models: { s: { tier: 'slow' } },
    },
    { baseDir: REPO_ROOT, env: {} },
  );
  const logger = createLogger('silent');
  let worker: RunningWorker;
  let remote: RemoteTier;

  before(async () => {
    worker = await startWorker(
      config,
      { tier: 'slow', host: '127.0.0.1', port: 0, shutdownGraceMs: 1_000 },
      logger,
    );
    remote = new RemoteTier(
      'slow',
      buildConfig(
        {
          tiers: { slow: { kind: 'remote', address: worker.address, healthIntervalMs: 100 } },
          models: { s: { tier: 'slow' } },
        },
        { baseDir: REPO_ROOT, env: {} },
      ).tiers.slow as RemoteTierConfig,
      {
        logger,
        metrics: new MetricsService({ defaultMetrics: false }),
        family: loadModelFamily(config.family.dir),
      },
    );
    await remote.start();
  });

  after(async () => {
    await remote.close();
    await worker.shutdown();
  });

  const request = (maxTokens: number, deadline?: number): GenerateRequest => ({
    tokens: [10, 20, 30],
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens,
    stopTokens: [],
    topLogprobs: 0,
    deadline,
  });

  it("streams the local tier's tokens and finish reason", async () => {
    const events: FlatEvent[] = [];
    for await (const e of flat(remote.generate(request(5), new AbortController().signal))) events.push(e);
    assert.deepEqual(
      events.map((e) => (e.kind === 'token' ? e.token : e.reason)),
      [10, 20, 30, 10, 20, 'length'],
    );
    assert.equal(remote.info().framework, 'echo');
  });

  it('stops generating when the client cancels', async () => {
    const before = (await workerInfo(worker.address)).counters!;
    const controller = new AbortController();
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const e of flat(remote.generate(request(400), controller.signal))) {
        if (e.kind === 'token') seen.push(e.token);
        if (seen.length === 2) controller.abort(new Error('client gone'));
      }
    }, /client gone/);
    await waitFor(
      async () =>
        (await workerInfo(worker.address)).counters!.generateCancelled === before.generateCancelled + 1,
    );
    const now = (await workerInfo(worker.address)).counters!;
    assert.equal(now.activeRequests, 0);
    assert.ok(now.tokensGenerated - before.tokensGenerated < 50, 'did not run to 400 tokens');
  });

  it('ends at the deadline with DEADLINE_EXCEEDED', async () => {
    await assert.rejects(
      async () => {
        for await (const _ of remote.generate(request(400, Date.now() + 200), new AbortController().signal)) {
          // draining
        }
      },
      (err: { code?: string }) => err.code === 'TG_REMOTE_DEADLINE',
    );
    await waitFor(async () => (await workerInfo(worker.address)).counters!.activeRequests === 0);
  });

  it('rejects token ids outside the vocabulary with INVALID_ARGUMENT', async () => {
    await assert.rejects(
      async () => {
        for await (const _ of remote.generate(
          { ...request(2), tokens: [1, 999_999] },
          new AbortController().signal,
        )) {
          // draining
        }
      },
      (err: { code?: string }) => err.code === 'TG_REMOTE_BAD_REQUEST',
    );
  });

  it('reports SERVING, then NOT_SERVING once shutting down', async () => {
    const probe = new HealthProbe(worker.address, channelOptions(10_000));
    try {
      assert.equal((await probe.check(2_000)).status, 'SERVING');
      const stopping = worker.shutdown();
      const status = (await probe.check(2_000)).status;
      assert.ok(status === 'NOT_SERVING' || status === 'ERROR', status);
      await stopping;
    } finally {
      probe.close();
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail('timed out');
    await sleep(25);
  }
}
