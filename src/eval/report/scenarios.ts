import type { ReportConfig } from './report-config.js';
import type { VariantRow } from './variant-rows.js';

/** A scenario recommendation derived from the measurements (never written by hand). */
export interface Recommendation {
  readonly scenario: string;
  /** The rule, as printed in the report. */
  readonly rule: string;
  readonly pick: VariantRow | undefined;
  /** The measured figure that decided it. */
  readonly evidence: string;
}

type Rule = {
  readonly scenario: string;
  readonly rule: string;
  readonly eligible: (r: VariantRow, floor: number) => boolean;
  /** Lower is better. */
  readonly key: (r: VariantRow) => number;
  readonly evidence: (r: VariantRow) => string;
};

const accurateEnough = (r: VariantRow, floor: number): boolean =>
  r.accuracy !== undefined && r.accuracy >= floor;
const f1 = (x: number): string => x.toFixed(1);

const RULES: readonly Rule[] = [
  {
    scenario: 'Real-time (interactive)',
    rule: 'lowest end-to-end p50 latency at concurrency 1 among variants with relative accuracy ≥ floor',
    eligible: accurateEnough,
    key: (r) => r.single.e2eP50Ms,
    evidence: (r) => `e2e p50 ${f1(r.single.e2eP50Ms)} ms, TTFT p50 ${f1(r.single.ttftP50Ms)} ms`,
  },
  {
    scenario: 'High-throughput (batch)',
    rule: 'highest aggregate tokens/s at any measured concurrency among variants with relative accuracy ≥ floor',
    eligible: accurateEnough,
    key: (r) => -r.best.tokensPerSec,
    evidence: (r) => `${r.best.tokensPerSec.toFixed(0)} tok/s at concurrency ${r.best.concurrency}`,
  },
  {
    scenario: 'CPU-only (cost per token)',
    rule: 'most tokens per CPU-second at concurrency 1 (tokens/s ÷ cores busy) among variants with relative accuracy ≥ floor',
    eligible: (r, floor) => accurateEnough(r, floor) && r.single.cpuPct > 0,
    key: (r) => -cpuEfficiency(r),
    evidence: (r) => `${cpuEfficiency(r).toFixed(0)} tokens per CPU-second`,
  },
  {
    scenario: 'Accuracy-critical',
    rule: 'highest relative accuracy (lowest perplexity); ties broken by end-to-end latency',
    eligible: (r) => r.accuracy !== undefined,
    // Accuracy dominates; latency (ms) only separates equal accuracies.
    key: (r) => -(r.accuracy ?? 0) * 1e9 + r.single.e2eP50Ms,
    evidence: (r) =>
      `relative accuracy ${(r.accuracy ?? 0).toFixed(4)}, perplexity ${r.perplexity?.toFixed(3) ?? '?'}`,
  },
  {
    scenario: 'Edge / memory-constrained',
    rule: 'lowest peak RSS among variants with relative accuracy ≥ floor',
    eligible: (r, floor) => accurateEnough(r, floor) && r.peakRssBytes !== undefined,
    key: (r) => r.peakRssBytes ?? Infinity,
    evidence: (r) => `peak RSS ${((r.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`,
  },
];

function cpuEfficiency(r: VariantRow): number {
  return r.single.tokensPerSec / (r.single.cpuPct / 100);
}

export function recommend(rows: readonly VariantRow[], config: ReportConfig): Recommendation[] {
  return RULES.map((rule) => {
    const pick = rows
      .filter((r) => rule.eligible(r, config.accuracyFloor))
      .reduce<VariantRow | undefined>(
        (best, r) => (best === undefined || rule.key(r) < rule.key(best) ? r : best),
        undefined,
      );
    return {
      scenario: rule.scenario,
      rule: rule.rule,
      pick,
      evidence:
        pick === undefined
          ? 'no variant qualifies (run `tiergate eval` for accuracies)'
          : rule.evidence(pick),
    };
  });
}

/** Variants not dominated in (lower e2e latency at concurrency 1, higher relative accuracy). */
export function paretoFront(rows: readonly VariantRow[]): VariantRow[] {
  const pts = rows.filter((r) => r.accuracy !== undefined);
  return pts
    .filter(
      (a) =>
        !pts.some(
          (b) =>
            b !== a &&
            b.single.e2eP50Ms <= a.single.e2eP50Ms &&
            (b.accuracy ?? 0) >= (a.accuracy ?? 0) &&
            (b.single.e2eP50Ms < a.single.e2eP50Ms || (b.accuracy ?? 0) > (a.accuracy ?? 0)),
        ),
    )
    .sort((a, b) => a.single.e2eP50Ms - b.single.e2eP50Ms);
}
