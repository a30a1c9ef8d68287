import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readProfiles } from '../family/accuracy-profiles.js';
import { BENCH_FORMAT, type BenchFile } from '../eval/bench-types.js';
import { generateReport } from '../eval/report/generate-report.js';
import { loadReportConfig } from '../eval/report/report-config.js';
import { CliError } from './config-arg.js';

export const REPORT_USAGE = `Usage: tiergate report [options]

Markdown report with SVG charts and the framework-selection matrix from a bench file and the
accuracy profiles.

  --bench <file>      measurements (default: reports/bench.json)
  --profiles <file>   accuracy profiles (default: reports/accuracy-profiles.json; optional)
  --weights <file>    matrix weights and accuracy floor (default: config/report.yaml if present)
  -o, --out <dir>     output directory (default: reports/); writes README.md and *.svg
`;

export async function reportCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      bench: { type: 'string' },
      profiles: { type: 'string' },
      weights: { type: 'string' },
      out: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(REPORT_USAGE);
    return 0;
  }
  const benchPath = resolve(values.bench ?? 'reports/bench.json');
  if (!existsSync(benchPath))
    throw new CliError(`no measurement file at ${benchPath} (run \`tiergate bench\`)`);
  const bench = JSON.parse(readFileSync(benchPath, 'utf8')) as BenchFile;
  if (bench.format !== BENCH_FORMAT) throw new CliError(`${benchPath} is not a ${BENCH_FORMAT} file`);
  const profiles = readProfiles(resolve(values.profiles ?? 'reports/accuracy-profiles.json'));
  const weights = values.weights ?? (existsSync('config/report.yaml') ? 'config/report.yaml' : undefined);
  const config = loadReportConfig(weights);
  const report = await generateReport(bench, profiles, config, `tiergate report ${argv.join(' ')}`.trim());
  const out = resolve(values.out ?? 'reports');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'README.md'), report.markdown);
  for (const [name, svg] of Object.entries(report.charts)) writeFileSync(join(out, name), svg);
  const totals = report.matrix.frameworks.map((f) => `${f.label} ${f.total?.toFixed(2) ?? '–'}`).join(', ');
  process.stdout.write(`matrix totals: ${totals}\nwrote ${join(out, 'README.md')}\n`);
  return 0;
}
