// The liveness rule (src/tiers/worker-host/liveness.ts) and the run gate's bookkeeping
// (run-gate.ts), on one thread: both sides of the gate over the same shared memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, type LivenessOptions } from '../../../src/tiers/worker-host/liveness.js';
import { GateView, newGateBuffer, RunGate } from '../../../src/tiers/worker-host/run-gate.js';

const OPTIONS: LivenessOptions = {
  heartbeatMs: 100,
  stallMs: 750,
  replaceAfterMs: 1500,
  runStallFactor: 4,
  runStallMs: 3000,
};

test('outside a run, silence past stallMs takes the worker out of service, past replaceAfterMs it is stalled', () => {
  const gate = { state: 'idle', lastSignAt: 10_000, runStartedAt: 0, expectedMs: 0 } as const;
  assert.deepEqual(judge(gate, 10_750, OPTIONS), { alive: true });
  const suspect = judge(gate, 10_751, OPTIONS);
  assert.equal(suspect.alive, true);
  assert.match(suspect.alive ? (suspect.suspect ?? '') : '', /silent for 751 ms/);
  assert.equal(judge(gate, 11_500, OPTIONS).alive, true);
  const verdict = judge(gate, 11_501, OPTIONS);
  assert.equal(verdict.alive, false);
  assert.equal(!verdict.alive && verdict.inRun, false);
  assert.match(!verdict.alive ? verdict.reason : '', /silent for 1501 ms/);
});

test('inside a run, the limit is runStallFactor × expected + runStallMs, whatever the heartbeat', () => {
  const gate = { state: 'in-run', lastSignAt: 0, runStartedAt: 10_000, expectedMs: 50 } as const;
  assert.deepEqual(judge(gate, 13_200, OPTIONS), { alive: true });
  const verdict = judge(gate, 13_201, OPTIONS);
  assert.equal(verdict.alive, false);
  assert.equal(!verdict.alive && verdict.inRun, true);
});

test('a sealed gate (the worker being stopped) is not judged', () => {
  const gate = { state: 'sealed', lastSignAt: 0, runStartedAt: 0, expectedMs: 0 } as const;
  assert.deepEqual(judge(gate, 1e12, OPTIONS), { alive: true });
});

test('the gate cannot be sealed during a run, and a run learns its expected duration', async () => {
  const buffer = newGateBuffer();
  const worker = new RunGate(buffer);
  const main = new GateView(buffer);
  let sealedDuringRun: boolean | undefined;
  await worker.run('step', 2, async () => {
    assert.equal(main.snapshot().state, 'in-run');
    sealedDuringRun = main.trySeal();
    await new Promise((r) => setTimeout(r, 40));
  });
  assert.equal(sealedDuringRun, false);
  assert.equal(main.snapshot().state, 'idle');
  // The next run of the same kind expects about what the last took per unit of cost (2 → 4).
  worker.runSync('step', 4, () => {
    const expected = main.snapshot().expectedMs;
    assert.ok(expected >= 70, `expected ${expected} ms`);
  });
  // A kind never run before expects nothing: only the margin applies to it.
  worker.runSync('prefill', 8, () => assert.equal(main.snapshot().expectedMs, 0));
  assert.equal(main.trySeal(), true);
  assert.equal(main.snapshot().state, 'sealed');
});

test('a message handler during an awaited run shows the thread outside the run', async () => {
  const buffer = newGateBuffer();
  const worker = new RunGate(buffer);
  const main = new GateView(buffer);
  const states: string[] = [];
  await worker.run('step', 1, async () => {
    worker.outside(() => states.push(main.snapshot().state));
    states.push(main.snapshot().state);
  });
  assert.deepEqual(states, ['idle', 'in-run']);
});

test('runEnded resolves when the run ends', async () => {
  const buffer = newGateBuffer();
  const worker = new RunGate(buffer);
  const main = new GateView(buffer);
  let ended = false;
  const run = worker.run('step', 1, () => new Promise((r) => setTimeout(r, 50)));
  const waited = main.runEnded(5_000).then(() => (ended = true));
  await run;
  await waited;
  assert.equal(ended, true);
  assert.equal(main.trySeal(), true);
});

test('the limits grow by how late the judging thread itself has been (an oversubscribed machine)', () => {
  const idle = { state: 'idle', lastSignAt: 10_000, runStartedAt: 0, expectedMs: 0 } as const;
  assert.deepEqual(judge(idle, 10_900, OPTIONS, 200), { alive: true });
  assert.equal(judge(idle, 11_600, OPTIONS).alive, false);
  assert.equal(judge(idle, 11_600, OPTIONS, 300).alive, true);
  const running = { state: 'in-run', lastSignAt: 0, runStartedAt: 10_000, expectedMs: 50 } as const;
  assert.equal(judge(running, 13_500, OPTIONS).alive, false);
  assert.equal(judge(running, 13_500, OPTIONS, 400).alive, true);
});
