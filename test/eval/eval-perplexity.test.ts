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

test('tiergate eval measures the TensorFlow.js tier as the tensorflow framework, FP32 as its manifest says', async () => {
  const config = buildConfig(
    {
      logging: { level: 'silent' },
      family: { dir: 'models/tiny' },
      tiers: { tf: { kind: 'tfjs', model: 'tensorflow-fp32' } },
      models: { tiny: { tier: 'tf' } },
    },
    { baseDir: REPO_ROOT, env: {} },
  );
  const expected = loadModelFamily(FAMILY_DIR).variants.find((v) => v.id === 'tensorflow-fp32');
  assert.equal(expected?.framework, 'tensorflow');
  const profiles = await runEval(
    config,
    createLogger('silent'),
    { ...DEFAULT_EVAL, allVariants: true, taskPrompts: 2 },
    createProgress(process.stderr, true),
  );
  // allVariants adds nothing: the family has one TensorFlow variant.
  assert.deepEqual(Object.keys(profiles.variants), ['tensorflow-fp32']);
  const measured = profiles.variants['tensorflow-fp32']!;
  assert.equal(measured.framework, 'tensorflow');
  const recorded = expected?.perplexity ?? Number.NaN;
  assert.ok(Math.abs(measured.perplexity / recorded - 1) < 1e-3, `${measured.perplexity} vs ${recorded}`);
  // The only FP32 variant measured is the reference itself.
  assert.equal(profiles.reference.variant, 'tensorflow-fp32');
  assert.equal(measured.relativeAccuracy, 1);
  assert.equal(profiles.tiers.tf?.variant, 'tensorflow-fp32');
});
