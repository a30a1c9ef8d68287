// The PyTorch path the sidecar uses (tiergate_model.Llama built from the GGUF F32 file) reproduces
// the golden PyTorch FP32 logits and greedy continuations, and is padding-safe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAMILY_ID, readGolden } from '../../models/ts/family.js';
import { LOGIT_TOLERANCE } from '../../models/ts/compare.js';

const script = fileURLToPath(new URL('../../models/scripts/check_torch_golden.py', import.meta.url));

test('PyTorch model loaded from GGUF F32 matches golden logits and greedy tokens', () => {
  const familyFile = fileURLToPath(new URL(`../../models/families/${FAMILY_ID}.json`, import.meta.url));
  const r = spawnSync('/usr/bin/python3', [script], {
    encoding: 'utf8',
    cwd: join(script, '..'),
    env: { ...process.env, TIERGATE_FAMILY_FILE: familyFile },
  });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout) as {
    prompts: { max_abs_diff: number; greedy: number[] }[];
    padding_max_abs_diff: number;
  };
  const golden = readGolden();
  assert.equal(res.prompts.length, golden.prompts.length);
  res.prompts.forEach((p, i) => {
    const g = golden.prompts[i];
    assert.ok(g !== undefined);
    assert.ok(p.max_abs_diff <= LOGIT_TOLERANCE.onnx, `prompt ${i}: max |diff| ${p.max_abs_diff}`);
    assert.deepEqual(p.greedy, g.greedy, `prompt ${i}`);
  });
  assert.ok(res.padding_max_abs_diff <= 1e-4, `padding: max |diff| ${res.padding_max_abs_diff}`);
});
