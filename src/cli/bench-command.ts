import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchTarget } from '../eval/bench-target.js';
import type { BenchOptions } from '../eval/bench-types.js';
import { createProgress } from '../eval/progress.js';
import { benchTargets, runBench } from '../eval/run-bench.js';
import { createLogger } from '../observability/logger.js';
import { CliError, intArg, listArg, loadCliConfig } from './config-arg.js';

export const BENCH_USAGE = `Usage: tiergate bench [options]

TTFT, inter-token latency, tokens/s and end-to-end latency per tier and variant at several
concurrency levels, directly against each tier and through the gateway; peak RSS, load time
and CPU use. Each target runs in its own child process. Writes a JSON measurement file.

  -c, --config <file>     gateway config (default: $TIERGATE_CONFIG, else config/tiergate.yaml)
  --tiers <a,b>           only these configured tiers
  --configured-only       only the variants the config serves
  --concurrency <list>    concurrency levels (default 1,4,16,64)
  --duration <s>          closed-loop seconds per level and path (default 3)
  --tokens <n>            tokens generated per request (default 64)
  --quick                 --configured-only, concurrency 1,4, one request per stream, 16 tokens
  -o, --out <file>        measurement file (default: reports/bench.json)
`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  tiers: { type: 'string' },
  'configured-only': { type: 'boolean' },
  concurrency: { type: 'string' },
  duration: { type: 'string' },
  tokens: { type: 'string' },
  quick: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  child: { type: 'string' },
  'child-out': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function benchCommand(argv: readonly string[], self: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS });
  if (values.help === true) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const config = loadCliConfig(values.config);
  const quick = values.quick === true;
  const concurrency = (listArg(values.concurrency) ?? (quick ? ['1', '4'] : ['1', '4', '16', '64'])).map(
    (c) => intArg(c, 'concurrency') as number,
  );
  const duration = values.duration === undefined ? (quick ? 0 : 3) : Number(values.duration);
  if (!Number.isFinite(duration) || duration < 0) throw new CliError(`--duration must be seconds >= 0`);
  const options: BenchOptions = {
    concurrency,
    durationMs: duration * 1000,
    maxTokens: intArg(values.tokens, 'tokens') ?? (quick ? 16 : 64),
    promptTokens: 32,
  };
  const tiers = listArg(values.tiers);
  const allVariants = values['configured-only'] !== true && !quick;
  if (values.child !== undefined) {
    // Child mode (run-bench.ts): measure one target, write its result, exit.
    const target = benchTargets(config, { tiers, allVariants }).find((t) => t.name === values.child);
    if (target === undefined) throw new CliError(`no bench target "${values.child}"`);
    const logger = createLogger('warn');
    const result = await benchTarget(config, target, options, logger, createProgress());
    writeFileSync(values['child-out'] ?? '/dev/stdout', JSON.stringify(result));
    return 0;
  }
  const out = resolve(values.out ?? 'reports/bench.json');
  const childArgs = argv.filter(
    (a, i) => a !== '-o' && a !== '--out' && argv[i - 1] !== '-o' && argv[i - 1] !== '--out',
  );
  const file = await runBench(config, { ...options, tiers, allVariants, self, childArgs }, createProgress());
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
  for (const t of file.targets) {
    const c1 = t.direct[0];
    const g1 = t.gateway[0];
    process.stdout.write(
      t.error !== undefined
        ? `${t.target.padEnd(22)} FAILED: ${t.error}\n`
        : `${t.target.padEnd(22)} load ${t.loadMs.toFixed(0).padStart(5)} ms  rss ${((t.peakRssBytes ?? 0) / 2 ** 20).toFixed(0).padStart(4)} MiB  ` +
            `c=1 ${c1?.tokensPerSec.toFixed(0) ?? '-'} tok/s ttft ${c1?.ttftP50Ms.toFixed(1) ?? '-'} ms ` +
            `(gateway ${g1?.tokensPerSec.toFixed(0) ?? '-'} tok/s ttft ${g1?.ttftP50Ms.toFixed(1) ?? '-'} ms)\n`,
    );
  }
  process.stdout.write(`wrote ${out}\n`);
  return 0;
}
