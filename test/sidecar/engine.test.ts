/**
 * The sidecar's model loading and KV-cache decoding: any llama-architecture GGUF in F32 or F16
 * loads into the shared model definition, and the decode paths (one sequence; several batched
 * in non-contiguous cache slots; equal-length prompts prefilled together; a kept sequence's
 * multi-token feed after a cached prefix) give the same logits as the shared model's full forward(),
 * with few-row products on the panel kernel and on OpenBLAS's GEMM.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomModel } from '../tiers/remote/helpers.js';
import { pythonReport } from './python-report.js';

interface Report {
  max_abs_diff: number;
  batched_max_abs_diff: number;
  group_prefill_max_abs_diff: number;
  extend_max_abs_diff: number;
  greedy: number[];
  precision: string;
  few_row_products: string;
  config: Record<string, number | boolean>;
}

describe('sidecar engine', () => {
  it('loads F32 and F16 GGUFs; single and batched KV-cache decoding match the full forward pass', () => {
    const dtypes = ['f32', 'f16'] as const;
    const reports = pythonReport<Report[]>('engine_report.py', [
      '[1, 5, 9, 3]',
      '24',
      ...dtypes.map((d) => randomModel(d)),
    ]);
    assert.equal(reports.length, 4);
    reports.forEach((rep, i) => {
      const dtype = dtypes[i >> 1]!;
      // scripts/install.sh installs numba, so the kernel must be in use where it is asked for.
      assert.equal(rep.few_row_products, i % 2 === 0 ? 'panels' : 'gemm');
      assert.equal(rep.precision, dtype);
      assert.deepEqual(rep.config, {
        dim: 64,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        vocab_size: 96,
        ffn_dim: 128,
        max_seq_len: 4096,
        tie_embeddings: false,
      });
      assert.equal(rep.greedy.length, 24);
      assert.deepEqual(rep.greedy, reports[i & ~1]!.greedy);
      assert.ok(rep.max_abs_diff < 1e-4, `${dtype}: largest logit difference ${rep.max_abs_diff}`);
      assert.ok(
        rep.batched_max_abs_diff < 1e-4,
        `${dtype}: batched decode differs by ${rep.batched_max_abs_diff}`,
      );
      assert.ok(
        rep.group_prefill_max_abs_diff < 1e-4,
        `${dtype}: prompts prefilled together differ by ${rep.group_prefill_max_abs_diff}`,
      );
      assert.ok(
        rep.extend_max_abs_diff < 1e-4,
        `${dtype}: a kept sequence's multi-token feed differs by ${rep.extend_max_abs_diff}`,
      );
    });
  });
});
