/**
 * The supervisor's restart policy with a "sidecar" that dies at once (/bin/false): delays double
 * from initialDelayMs up to maxDelayMs, every restart is counted, the reason is kept for /readyz,
 * and stop() ends the cycle. No model or torch involved.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelOptions } from '../../../src/tiers/remote/proto-clients.js';
import { RemoteTierError } from '../../../src/tiers/remote/remote-tier-error.js';
import { SidecarSupervisor } from '../../../src/tiers/remote/sidecar-supervisor.js';
import { captureLogger, waitFor } from './helpers.js';

describe('sidecar supervisor backoff', () => {
  it('restarts a crashing sidecar with exponential backoff and stops when told', async () => {
    const { logger, lines } = captureLogger();
    const supervisor = new SidecarSupervisor(
      {
        python: '/bin/false',
        modelPath: '/nonexistent.gguf',
        modelId: 'm',
        variant: 'v',
        threads: 1,
        maxConcurrent: 1,
        listen: '127.0.0.1:0',
        env: {},
        startTimeoutMs: 5_000,
        restart: { initialDelayMs: 20, maxDelayMs: 80, resetAfterMs: 60_000 },
        healthIntervalMs: 1_000,
        channel: channelOptions(10_000),
        logLevel: 'info',
      },
      logger,
    );
    const delays: number[] = [];
    supervisor.on('restart', (_n: number, delay: number) => delays.push(delay));
    await assert.rejects(
      supervisor.start(),
      (err: unknown) =>
        err instanceof RemoteTierError &&
        err.code === 'TG_REMOTE_SPAWN_FAILED' &&
        /exited with code 1/.test(err.message),
    );
    await waitFor(() => delays.length >= 5, 10_000, 'five restarts');
    assert.deepEqual(delays.slice(0, 5), [20, 40, 80, 80, 80]);
    assert.equal(supervisor.state === 'backoff' || supervisor.state === 'starting', true);
    assert.match(supervisor.detail, /sidecar exited with code 1/);
    await supervisor.stop();
    const stoppedAt = supervisor.restarts;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(supervisor.restarts, stoppedAt, 'no restarts after stop()');
    assert.equal(supervisor.state, 'stopped');
    assert.ok(lines.some((l) => String(l.msg).startsWith('sidecar down: sidecar exited with code 1')));
  });
});
