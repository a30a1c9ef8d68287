/**
 * Where the misses of a `bench:slo` run were, from its per-request dump (BENCH_SLO_DUMP):
 *   node --import tsx bench/routing-slo-misses.ts <dump.jsonl> [--bin 5]
 * Per variant: misses / requests by arrival time in bins of --bin seconds (the warm-up included:
 * arrival times count from the start of the variant), then the misses of the measured part
 * (after the warm-up) by class and tier, each as planned within or over its budget by the engine
 * (over: no tier was predicted to make it — capacity; within: the prediction did not hold).
 * docs/routing.md "Cold start and steady state" reads it.
 */
import { readFileSync } from 'node:fs';

interface DumpLine {
  readonly variant: string;
  readonly atMs: number;
  readonly class: string;
  readonly budgetMs: number;
  readonly tier: string;
  readonly predictedMs?: number;
  readonly met: boolean;
  readonly warmup?: boolean;
}

const [file, ...rest] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node --import tsx bench/routing-slo-misses.ts <dump.jsonl> [--bin 5]\n');
  process.exit(2);
}
const binAt = rest.indexOf('--bin');
const binS = binAt >= 0 ? Number(rest[binAt + 1]) : 5;
if (!(binS > 0)) {
  process.stderr.write('routing-slo-misses: --bin must be a positive number of seconds\n');
  process.exit(2);
}

const lines = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as DumpLine);
const variants = [...new Set(lines.map((l) => l.variant))];
for (const variant of variants) {
  const rows = lines.filter((l) => l.variant === variant);
  const bins = new Map<number, [number, number]>();
  for (const r of rows) {
    const k = Math.floor(r.atMs / (binS * 1000));
    const cell = bins.get(k) ?? [0, 0];
    if (!r.met) cell[0]++;
    cell[1]++;
    bins.set(k, cell);
  }
  const measured = rows.filter((r) => r.warmup !== true);
  const misses = new Map<string, number>();
  for (const r of measured.filter((x) => !x.met)) {
    const plan = r.predictedMs === undefined ? 'unplanned' : r.predictedMs <= r.budgetMs ? 'within' : 'over';
    const key = `${r.class} on ${r.tier} (planned ${plan})`;
    misses.set(key, (misses.get(key) ?? 0) + 1);
  }
  process.stdout.write(
    `${variant}\n  misses by arrival (${binS} s bins): ` +
      [...bins]
        .sort(([a], [b]) => a - b)
        .map(([k, [m, n]]) => `${k * binS}s ${m}/${n}`)
        .join(', ') +
      `\n  measured: ${measured.filter((r) => !r.met).length}/${measured.length} missed` +
      (misses.size === 0
        ? '\n'
        : `: ${[...misses]
            .sort(([, a], [, b]) => b - a)
            .map(([k, n]) => `${n} ${k}`)
            .join('; ')}\n`),
  );
}
