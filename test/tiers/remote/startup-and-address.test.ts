/**
 * Start-up paths: an external sidecar reached by address (how it runs in Kubernetes), and the
 * failures an operator must be told about — no interpreter, a bad model file, bad options.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TierUnavailableError } from '../../../src/tiers/errors.js';
import { RemoteTierError } from '../../../src/tiers/remote/remote-tier-error.js';
import { collect, makeTier, randomModel, request, startExternalSidecar, waitFor } from './helpers.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('remote tier start-up', () => {
  it('connects to an external sidecar by address', async () => {
    const { child, address } = await startExternalSidecar(['--model', randomModel()]);
    try {
      const h = makeTier({ address, connectTimeoutMs: 30_000, required: true });
      await h.tier.start();
      assert.equal(h.tier.health().ready, true);
      assert.equal(h.tier.sidecarPid, undefined, 'nothing is spawned in address mode');
      const ready = h.lines.find((l) => l.msg === 'remote tier ready') as
        { runtime?: Record<string, string> } | undefined;
      // scripts/install.sh installs numba: batched steps run on the panel kernel.
      assert.equal(ready?.runtime?.few_row_products, 'panels');
      const r = await collect(h.tier.generate(request([1, 2, 3], 5), new AbortController().signal));
      assert.equal(r.tokens.length, 5);
      await h.tier.close();
      assert.equal(child.exitCode, null, 'closing the tier leaves an external server running');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('an unreachable address: the gateway can still start, and health says why', async () => {
    const h = makeTier({ address: '127.0.0.1:1', connectTimeoutMs: 300, healthIntervalMs: 100 });
    await h.tier.start();
    const health = h.tier.health();
    assert.equal(health.ready, false);
    assert.match(health.detail ?? '', /127\.0\.0\.1:1 not SERVING after 300 ms/);
    await assert.rejects(
      h.tier.generate(request([1], 1), new AbortController().signal).next(),
      TierUnavailableError,
    );
    assert.ok(h.lines.some((l) => l.msg === 'remote tier not ready; continuing without it'));
    await h.tier.close();
  });

  it('a missing interpreter: not ready, and the reason names it', async () => {
    const h = makeTier({
      spawn: true,
      model: randomModel(),
      python: '/nonexistent/python3',
      restart: { initialDelayMs: 10_000, maxDelayMs: 10_000, resetAfterMs: 60_000 },
    });
    await h.tier.start();
    const health = h.tier.health();
    assert.equal(health.ready, false);
    assert.match(health.detail ?? '', /cannot start the sidecar \(\/nonexistent\/python3: spawn .*ENOENT\)/);
    await h.tier.close();
  });

  it("a file that is not a GGUF: a required tier fails to start with the sidecar's own reason", async () => {
    const bad = join(tmpdir(), `not-a-model-${process.pid}.gguf`);
    writeFileSync(bad, 'definitely not gguf');
    const h = makeTier({
      spawn: true,
      model: bad,
      required: true,
      restart: { initialDelayMs: 10_000, maxDelayMs: 10_000, resetAfterMs: 60_000 },
    });
    await assert.rejects(
      h.tier.start(),
      (err: unknown) =>
        err instanceof RemoteTierError &&
        err.code === 'TG_REMOTE_SPAWN_FAILED' &&
        /exited with code 3: model load failed: GGUFError: not a GGUF file/.test(err.message),
    );
    await h.tier.close();
  });

  it('a supervised sidecar never outlives its gateway, even one killed with SIGKILL', async () => {
    const gateway = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures/gateway-with-sidecar.ts')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const pid = await new Promise<number>((resolve, reject) => {
      createInterface({ input: gateway.stdout! }).once('line', (line) => resolve(Number(line)));
      gateway.once('exit', (code) => reject(new Error(`stand-in gateway exited with ${code}`)));
    });
    assert.ok(alive(pid));
    gateway.kill('SIGKILL');
    // The sidecar watches its stdin (the gateway's end of a pipe) and exits when it closes.
    await waitFor(() => !alive(pid), 10_000, `sidecar ${pid} to exit`);
  });

  it('rejects options with both or neither of address and spawn', () => {
    assert.throws(
      () => makeTier({ spawn: true, address: '127.0.0.1:5000' }),
      (e: unknown) => e instanceof RemoteTierError && e.code === 'TG_REMOTE_CONFIG',
    );
    assert.throws(() => makeTier({}), /give address .* or spawn: true/);
  });
});
