import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeProfiles } from '../family/accuracy-profiles.js';
import { createProgress } from '../eval/progress.js';
import { DEFAULT_EVAL, runEval } from '../eval/run-eval.js';
import { createLogger } from '../observability/logger.js';
import { intArg, listArg, loadCliConfig } from './config-arg.js';

export const EVAL_USAGE = `Usage: tiergate eval [options]

Perplexity and a greedy-continuation ROUGE-L score of every configured tier and every other
variant of its framework, through the Tier interface; writes the accuracy profiles file.

  -c, --config <file>    gateway config (default: $TIERGATE_CONFIG, else config/tiergate.yaml)
  --tiers <a,b>          only these configured tiers
  --configured-only      only the variants the config serves (no other variants)
  --tokens <n>           score at most n tokens of the slice (whole windows)
  --full                 the whole validation split (needs models/<family>/work/ from models:build)
  --quick                --tokens 1024 and 4 task prompts
  --task-prompts <n>     greedy-continuation prompts for ROUGE-L (default ${DEFAULT_EVAL.taskPrompts})
  -o, --out <file>       profiles file (default: reports/accuracy-profiles.json)
`;

export async function evalCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string', short: 'c' },
      tiers: { type: 'string' },
      'configured-only': { type: 'boolean' },
      tokens: { type: 'string' },
      full: { type: 'boolean' },
      quick: { type: 'boolean' },
      'task-prompts': { type: 'string' },
      out: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(EVAL_USAGE);
    return 0;
  }
  const config = loadCliConfig(values.config);
  const logger = createLogger(config.logging.level === 'info' ? 'warn' : config.logging.level);
  const quick = values.quick === true;
  const out = resolve(values.out ?? 'reports/accuracy-profiles.json');
  const profiles = await runEval(
    config,
    logger,
    {
      ...DEFAULT_EVAL,
      tiers: listArg(values.tiers),
      maxTokens: intArg(values.tokens, 'tokens') ?? (quick ? 1024 : undefined),
      full: values.full === true,
      allVariants: values['configured-only'] !== true,
      taskPrompts: intArg(values['task-prompts'], 'task-prompts') ?? (quick ? 4 : DEFAULT_EVAL.taskPrompts),
    },
    createProgress(),
  );
  writeProfiles(out, profiles);
  const rows = Object.entries(profiles.variants).map(
    ([id, v]) =>
      `${id.padEnd(14)} ppl ${v.perplexity.toFixed(3).padStart(9)}  rel.acc ${v.relativeAccuracy.toFixed(4)}  ` +
      `degr ${v.degradationPct.toFixed(2).padStart(6)}%  rouge-l ${v.rougeL.toFixed(3)}`,
  );
  process.stdout.write(
    `${rows.join('\n')}\nreference ${profiles.reference.variant} ppl ${profiles.reference.perplexity}\nwrote ${out}\n`,
  );
  return 0;
}
