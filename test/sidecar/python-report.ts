/**
 * Runs one of this folder's `*_report.py` scripts on Debian's interpreter with the sidecar
 * package importable, and returns the JSON it printed; a failed run fails the test with the
 * script's stderr.
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SIDECAR_DIR } from '../../src/tiers/remote/sidecar-supervisor.js';
import { PYTHON } from '../tiers/remote/helpers.js';

export function pythonReport<T>(script: string, args: readonly string[] = []): T {
  const r = spawnSync(PYTHON, [join(import.meta.dirname, script), ...args], {
    cwd: SIDECAR_DIR,
    env: { ...process.env, PYTHONPATH: SIDECAR_DIR },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}
