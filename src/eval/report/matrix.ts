import type { CriterionId, ReportConfig } from './report-config.js';
import { FRAMEWORKS, isQuantized, type VariantRow } from './variant-rows.js';

/**
 * The paper's framework-selection matrix, filled from measurements. Each criterion reduces a
 * framework's measured variants to one raw value; the score is 0–5 relative to the best
 * framework on that criterion (5 × value / best, or 5 × best / value when lower is better).
 * Totals are weighted means over the criteria that were measured.
 */
export interface Criterion {
  readonly id: CriterionId;
  readonly label: string;
  /** The formula, as printed under the matrix. */
  readonly formula: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  /** undefined: not measurable from these rows (e.g. no GPU). */
  readonly value: (rows: readonly VariantRow[], floor: number) => number | undefined;
}

const maxOf = (xs: readonly (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length === 0 ? undefined : Math.max(...v);
};
const minOf = (xs: readonly (number | undefined)[]): number | undefined => {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length === 0 ? undefined : Math.min(...v);
};
const MIB = 2 ** 20;

export const CRITERIA: readonly Criterion[] = [
  {
    id: 'gpuPerformance',
    label: 'GPU performance',
    formula: 'not measured on this machine (no GPU)',
    unit: '',
    better: 'higher',
    value: () => undefined,
  },
  {
    id: 'cpuPerformance',
    label: 'CPU performance',
    formula: 'best single-stream tokens/s (concurrency 1, direct) over the framework’s variants',
    unit: 'tok/s',
    better: 'higher',
    value: (rows) => maxOf(rows.map((r) => r.single.tokensPerSec)),
  },
  {
    id: 'edgePerformance',
    label: 'Edge performance',
    formula: 'best single-stream tokens/s per 100 MiB of peak RSS of the serving process',
    unit: 'tok/s/100MiB',
    better: 'higher',
    value: (rows) =>
      maxOf(
        rows.map((r) =>
          r.peakRssBytes === undefined ? undefined : (r.single.tokensPerSec * 100 * MIB) / r.peakRssBytes,
        ),
      ),
  },
  {
    id: 'accuracyPreservation',
    label: 'Accuracy preservation',
    formula: 'lowest relative accuracy (ppl_ref / ppl) over the framework’s variants',
    unit: '',
    better: 'higher',
    value: (rows) => minOf(rows.map((r) => r.accuracy)),
  },
  {
    id: 'memoryEfficiency',
    label: 'Memory efficiency',
    formula: 'lowest peak RSS (VmHWM) of the serving process over the framework’s variants',
    unit: 'MiB',
    better: 'lower',
    value: (rows) =>
      minOf(rows.map((r) => (r.peakRssBytes === undefined ? undefined : r.peakRssBytes / MIB))),
  },
  {
    id: 'quantizationSupport',
    label: 'Quantization support',
    formula: 'number of quantized variants served with relative accuracy ≥ the accuracy floor',
    unit: 'variants',
    better: 'higher',
    value: (rows, floor) =>
      rows.filter((r) => isQuantized(r.precision) && r.accuracy !== undefined && r.accuracy >= floor).length,
  },
  {
    id: 'batchingThroughput',
    label: 'Batching throughput',
    formula: 'highest aggregate tokens/s over all concurrency levels and variants',
    unit: 'tok/s',
    better: 'higher',
    value: (rows) => maxOf(rows.map((r) => r.best.tokensPerSec)),
  },
  {
    id: 'easeOfDeployment',
    label: 'Ease of deployment',
    formula: 'shortest cold start (Tier.start(): model load, workers, sidecar readiness)',
    unit: 'ms',
    better: 'lower',
    value: (rows) => minOf(rows.map((r) => r.loadMs)),
  },
];

export interface MatrixCell {
  readonly value: number | undefined;
  /** 0–5, undefined when not measured. */
  readonly score: number | undefined;
}

export interface FrameworkColumn {
  readonly id: string;
  readonly label: string;
  readonly measured: boolean;
  readonly cells: Readonly<Record<CriterionId, MatrixCell>>;
  /** Weighted mean score (0–5) over measured criteria; undefined when nothing was measured. */
  readonly total: number | undefined;
}

export interface Matrix {
  readonly criteria: readonly Criterion[];
  readonly frameworks: readonly FrameworkColumn[];
  readonly weights: ReportConfig['weights'];
}

export function buildMatrix(rows: readonly VariantRow[], config: ReportConfig): Matrix {
  const raw = FRAMEWORKS.map((f) => {
    const mine = rows.filter((r) => r.framework === f.id);
    const values = Object.fromEntries(
      CRITERIA.map((c) => [c.id, mine.length === 0 ? undefined : c.value(mine, config.accuracyFloor)]),
    ) as Record<CriterionId, number | undefined>;
    return { ...f, measured: mine.length > 0, values };
  });
  const frameworks = raw.map((f): FrameworkColumn => {
    const cells = {} as Record<CriterionId, MatrixCell>;
    let weighted = 0;
    let weights = 0;
    for (const c of CRITERIA) {
      const value = f.values[c.id];
      const all = raw.map((o) => o.values[c.id]);
      const score = value === undefined ? undefined : scoreOf(value, all, c.better);
      cells[c.id] = { value, score };
      if (score !== undefined) {
        weighted += score * config.weights[c.id];
        weights += config.weights[c.id];
      }
    }
    return {
      id: f.id,
      label: f.label,
      measured: f.measured,
      cells,
      total: weights > 0 ? weighted / weights : undefined,
    };
  });
  return { criteria: CRITERIA, frameworks, weights: config.weights };
}

/** 0–5 relative to the best framework on this criterion. */
function scoreOf(value: number, all: readonly (number | undefined)[], better: 'higher' | 'lower'): number {
  if (better === 'higher') {
    const best = maxOf(all) ?? 0;
    return best > 0 ? (5 * value) / best : 0;
  }
  const best = minOf(all) ?? 0;
  return value > 0 ? (5 * best) / value : 5;
}
