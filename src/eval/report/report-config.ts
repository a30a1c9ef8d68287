import { existsSync, readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';

/**
 * Weights of the framework-selection matrix and the thresholds of the scenario recommendations
 * (config/report.yaml, docs/eval.md). A weight of 0 drops a criterion from the totals.
 */
const Weight = (d: number) => Type.Number({ minimum: 0, default: d });

export const ReportConfigSchema = Type.Object(
  {
    weights: Type.Object(
      {
        gpuPerformance: Weight(1),
        cpuPerformance: Weight(3),
        edgePerformance: Weight(2),
        accuracyPreservation: Weight(3),
        memoryEfficiency: Weight(2),
        quantizationSupport: Weight(1),
        batchingThroughput: Weight(2),
        easeOfDeployment: Weight(1),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Variants below this relative accuracy (ppl_ref / ppl) are not recommended for the speed
     * scenarios and do not count as usable quantization levels.
     */
    accuracyFloor: Type.Number({ minimum: 0, maximum: 1, default: 0.97 }),
  },
  { additionalProperties: false, default: {} },
);

export type ReportConfig = Static<typeof ReportConfigSchema>;
export type CriterionId = keyof ReportConfig['weights'];

export class ReportConfigError extends Error {
  readonly code = 'TIERGATE_ERR_REPORT_CONFIG';
}

/** Validated report config from YAML (missing file: the defaults). */
export function loadReportConfig(path: string | undefined): ReportConfig {
  if (path !== undefined && !existsSync(path))
    throw new ReportConfigError(`report config not found: ${path}`);
  const raw: unknown = path === undefined ? {} : parse(readFileSync(path, 'utf8'));
  return parseReportConfig(raw ?? {}, path ?? 'defaults');
}

export function parseReportConfig(raw: unknown, source = 'report config'): ReportConfig {
  const value = Value.Default(ReportConfigSchema, structuredClone(raw)) as unknown;
  const errors = [...Value.Errors(ReportConfigSchema, value)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (errors.length > 0) throw new ReportConfigError(`invalid ${source}:\n  - ${errors.join('\n  - ')}`);
  return value as ReportConfig;
}
