import { benchCommand } from './bench-command.js';
import { evalCommand } from './eval-command.js';
import { reportCommand } from './report-command.js';

/** `tiergate eval | bench | report` (docs/eval.md): measured framework selection. */
const COMMANDS = ['eval', 'bench', 'report'] as const;
type MeasureCommand = (typeof COMMANDS)[number];

export const MEASURE_USAGE = `       tiergate eval [--tiers a,b] [--tokens n | --full] [--quick] [-o profiles.json]
       tiergate bench [--tiers a,b] [--quick] [--duration s] [--concurrency 1,4,16,64] [-o bench.json]
       tiergate report [--bench bench.json] [--profiles profiles.json] [--weights report.yaml] [-o dir]
`;

export function isMeasureCommand(name: string | undefined): name is MeasureCommand {
  return (COMMANDS as readonly (string | undefined)[]).includes(name);
}

/**
 * Runs one measuring sub-command; operator mistakes (codes TIERGATE_ERR_*) print one line and
 * exit 1, anything else is a bug and keeps its stack.
 */
export async function runMeasureCommand(name: MeasureCommand, argv: readonly string[]): Promise<number> {
  try {
    if (name === 'eval') return await evalCommand(argv);
    // Children of `bench` re-run this same entry point: node flags (e.g. tsx's loader) + script.
    if (name === 'bench') return await benchCommand(argv, [...process.execArgv, process.argv[1] ?? '']);
    return await reportCommand(argv);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('TIERGATE_ERR_') || code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`tiergate ${name}: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}
