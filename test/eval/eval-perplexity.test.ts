import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/index.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { createProgress } from '../../src/eval/progress.js';
import { DEFAULT_EVAL, runEval } from '../../src/eval/run-eval.js';
import { createLogger } from '../../src/observability/logger.js';
import { FAMILY_DIR, REPO_ROOT } from '../helpers/start-gateway.js';

const VARIANT = 'gguf-q4_k_m';

test('tiergate eval reproduces the manifest perplexity of the served variant through Tier.score', async () => {
  const config = buildConfig(
    {
      logging: { level: 'silent' },
      family: { dir: 'models/tiny' },
      tiers: { edge: { kind: 'llamacpp', model: VARIANT, threads: 1, sequences: 2 } },
      models: { tiny: { tier: 'edge' } },
    },
    { baseDir: REPO_ROOT, env: {} },
  );
  const expected = loadModelFamily(FAMILY_DIR).variants.find((v) => v.id === VARIANT)?.perplexity;
  assert.ok(expected !== undefined, `manifest lists ${VARIANT} with a perplexity`);
  const profiles = await runEval(
    config,
    createLogger('silent'),
    // The whole committed slice: the manifest's perplexities were measured on exactly these windows.
    { ...DEFAULT_EVAL, allVariants: false, taskPrompts: 2 },
    createProgress(process.stderr, true),
  );
  const measured = profiles.variants[VARIANT];
  assert.ok(measured, 'the served variant was evaluated');
  // Same tokens, same framework: only float summation order may differ.
  assert.ok(
    Math.abs(measured.perplexity / expected - 1) < 0.002,
    `${measured.perplexity} vs manifest ${expected}`,
  );
  assert.equal(measured.manifestPerplexity, expected);
  assert.ok(measured.rougeL >= 0 && measured.rougeL <= 1);
  assert.equal(profiles.tiers.edge?.variant, VARIANT);
  // No FP32 variant was measured in this run, so the manifest's reference is used.
  assert.equal(profiles.reference.measured, false);
  assert.ok(measured.relativeAccuracy > 0.9 && measured.relativeAccuracy <= 1);
});
