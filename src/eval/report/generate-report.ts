import type { AccuracyProfiles } from '../../family/accuracy-profiles.js';
import type { BenchFile } from '../bench-types.js';
import { paretoSpec, renderSvg, throughputSpec } from './charts.js';
import { renderMarkdown } from './markdown.js';
import { buildMatrix, type Matrix } from './matrix.js';
import type { ReportConfig } from './report-config.js';
import { paretoFront, recommend, type Recommendation } from './scenarios.js';
import { variantRows } from './variant-rows.js';

export interface Report {
  readonly markdown: string;
  /** File name (relative to the Markdown) → SVG text. */
  readonly charts: Readonly<Record<string, string>>;
  readonly matrix: Matrix;
  readonly recommendations: readonly Recommendation[];
}

/** Pure: measurements in, report out (the CLI writes the files). */
export async function generateReport(
  bench: BenchFile,
  profiles: AccuracyProfiles | undefined,
  config: ReportConfig,
  command: string,
): Promise<Report> {
  const rows = variantRows(bench, profiles);
  const matrix = buildMatrix(rows, config);
  const recommendations = recommend(rows, config);
  const front = paretoFront(rows);
  const charts = { throughput: 'throughput.svg', pareto: 'pareto.svg' };
  const markdown = renderMarkdown({
    bench,
    profiles,
    rows,
    matrix,
    recommendations,
    front,
    accuracyFloor: config.accuracyFloor,
    charts,
    command,
  });
  return {
    markdown,
    charts: {
      [charts.throughput]: await renderSvg(throughputSpec(bench)),
      [charts.pareto]: await renderSvg(paretoSpec(rows, front)),
    },
    matrix,
    recommendations,
  };
}
