/**
 * The sidecar's few-row product kernel (sidecar/tiergate_sidecar/panels.py), which replaces
 * OpenBLAS's GEMM for batched decode steps: its contract is torch's product. Row counts below,
 * at and above the kernel's register block, widths that are not a multiple of its panel, a
 * non-contiguous input, both panel widths (AVX-512's, AVX2's); each row's result does not depend
 * on the rows beside it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pythonReport } from './python-report.js';

interface Case {
  rows: number;
  in: number;
  out: number;
  panel: number;
  shape: number[];
  dtype: string;
  max_rel_diff: number;
  rows_alone_identical: boolean;
}

describe('sidecar panel kernel', () => {
  it('equals torch.mm within float32 rounding for any rows and widths, each row independent of the others', () => {
    const report = pythonReport<{ unavailable: string | null; rows: number; cases: Case[] }>(
      'panels_report.py',
    );
    assert.equal(report.unavailable, null, 'numba is installed by scripts/install.sh');
    assert.equal(report.cases.length, 12);
    assert.deepEqual([...new Set(report.cases.map((c) => c.panel))], [16, 8]);
    for (const c of report.cases) {
      const name = `${c.rows} x ${c.in} -> ${c.out}, panels of ${c.panel}`;
      assert.deepEqual(c.shape, [c.rows, c.out], name);
      assert.equal(c.dtype, 'torch.float32', name);
      assert.ok(c.max_rel_diff < 1e-5, `${name}: differs from the float64 product by ${c.max_rel_diff}`);
      assert.ok(c.rows_alone_identical, `${name}: a row's result changed with the rows beside it`);
    }
    assert.ok(
      report.cases.some((c) => c.rows > 2 * report.rows),
      'a case spans three row groups',
    );
  });
});
