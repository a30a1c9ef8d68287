import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, type TestGateway } from '../helpers/start-gateway.js';
import {
  edgeWorkerConfig,
  spawnWorker,
  stopWorker,
  workerInfo,
  type WorkerProcess,
} from './worker-process.js';

/**
 * Two real `tiergate worker --tier edge` processes (llama.cpp on the family's Q4_K_M) behind one
 * `remote` tier with two addresses in a real gateway; one is SIGKILLed mid-test.
 */
describe('tiergate worker scale-out', () => {
  const config = edgeWorkerConfig();
  let workers: WorkerProcess[] = [];
  let gw: TestGateway;
  let replacement: Promise<WorkerProcess> | undefined;

  before(async () => {
    workers = await Promise.all([spawnWorker(config, 'edge'), spawnWorker(config, 'edge')]);
    gw = await startGateway({
      family: { dir: 'models/tiny' },
      tiers: {
        edge: {
          kind: 'remote',
          addresses: workers.map((w) => w.address),
          healthIntervalMs: 200,
          keepaliveMs: 1_000,
          connectTimeoutMs: 30_000,
        },
      },
      models: { 'tiergate-tiny': { tier: 'edge' } },
    });
  });

  after(async () => {
    const late = await replacement?.catch(() => undefined);
    if (late !== undefined && !workers.includes(late)) workers.push(late);
    await gw?.shutdown();
    await Promise.all(workers.map(stopWorker));
  });

  const complete = (prompt: string) =>
    gw.client.completions.create({ model: 'tiergate-tiny', prompt, max_tokens: 12, temperature: 0 });

  it('serves the tier contract: Info names the llama.cpp tier', async () => {
    const info = await workerInfo(workers[0]!.address);
    assert.equal(info.framework, 'llama.cpp');
    assert.equal(info.maxConcurrentRequests, 4);
    assert.ok(info.vocabSize > 0 && info.contextLength > 0);
    assert.equal(gw.gateway.tiers.get('edge')?.info().framework, 'llama.cpp');
  });

  it('spreads requests over both workers, with the same greedy output from each', async () => {
    const before = await Promise.all(workers.map((w) => workerInfo(w.address)));
    const prompts = Array.from({ length: 8 }, () => 'The old house on the hill');
    const results = await Promise.all(prompts.map(complete));
    const texts = new Set(results.map((r) => r.choices[0]?.text));
    assert.equal(texts.size, 1, 'greedy decoding is identical on every worker');
    const afterInfo = await Promise.all(workers.map((w) => workerInfo(w.address)));
    const served = afterInfo.map(
      (a, i) => a.counters!.generateStarted - before[i]!.counters!.generateStarted,
    );
    assert.equal(served[0]! + served[1]!, 8);
    assert.ok(served[0]! >= 2 && served[1]! >= 2, `spread: ${served.join(' / ')}`);
  });

  it('keeps serving on the other worker after one is killed, and health takes it out', async () => {
    const [victim, survivor] = workers as [WorkerProcess, WorkerProcess];
    const before = (await workerInfo(survivor.address)).counters!.generateStarted;
    victim.child.kill('SIGKILL');
    // A replacement on the same port starts loading now (it takes seconds); the next test awaits it.
    const port = Number(victim.address.split(':').at(-1));
    replacement = spawnWorker(config, 'edge', port);
    replacement.catch(() => undefined);
    // Right after the kill, before any health probe noticed: every request must still succeed.
    for (let i = 0; i < 6; i++) {
      const r = await complete(`Request number ${i} after the kill`);
      assert.equal(r.choices[0]?.finish_reason, 'length');
    }
    const after = (await workerInfo(survivor.address)).counters!.generateStarted;
    assert.equal(after - before, 6, 'all went to the survivor');
    await waitFor(
      () => /1\/2 addresses serving/.test(gw.gateway.tiers.get('edge')!.health().detail ?? ''),
      'health took it out',
    );
    assert.equal(gw.gateway.tiers.get('edge')!.health().ready, true);
  });

  it('brings an address back when a worker serves on it again', async () => {
    assert.ok(replacement, 'replacement started');
    workers[0] = await replacement;
    await waitFor(
      () => /2\/2 addresses serving/.test(gw.gateway.tiers.get('edge')!.health().detail ?? ''),
      'address back',
    );
    const before = (await workerInfo(workers[0].address)).counters!.generateStarted;
    await Promise.all(Array.from({ length: 4 }, (_, i) => complete(`Back again ${i}`)));
    const after = (await workerInfo(workers[0].address)).counters!.generateStarted;
    assert.ok(after - before >= 1, 'the restarted worker takes traffic again');
  });
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await sleep(50);
  }
}
