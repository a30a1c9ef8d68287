import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { loadModelFamily } from '../family/manifest.js';
import { loadRoutingFile } from '../routing/policy-file.js';
import { formatReport, simulate, type SimulationReport } from '../routing/simulate.js';
import { TierProfiles } from '../routing/tier-profiles.js';
import { configuredVariant } from '../tiers/registry.js';
import { parseTraffic } from '../routing/traffic.js';

export const SIMULATE_USAGE = `Usage: tiergate simulate --policy <file> [--policy <file> ...] --traffic <file.jsonl> [--config <file>] [--json]

Replays recorded request features (JSONL: prompt_tokens, max_tokens, optional model,
latency_budget_ms, accuracy_floor, policy, api_key, count) against each candidate policy
file and prints the tier mix, predicted latency percentiles, expected accuracy and cost.
Tiers, models and the model family come from the gateway config; latency priors from the
policy file's \`profiles\`, else the config's. No model is loaded.
`;

/**
 * \`tiergate simulate\`: compares candidate policy files on recorded traffic without a running
 * gateway. Returns the process exit code; output goes to `out`.
 */
export function simulateCommand(
  argv: readonly string[],
  config: (path: string | undefined) => Config,
  out: NodeJS.WritableStream,
): number {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      policy: { type: 'string', short: 'p', multiple: true },
      traffic: { type: 'string', short: 't' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true || values.policy === undefined || values.traffic === undefined) {
    out.write(SIMULATE_USAGE);
    return values.help === true ? 0 : 1;
  }
  const cfg = config(values.config);
  const tierNames = Object.keys(cfg.tiers);
  const family = loadModelFamily(cfg.family.dir);
  const variants: Record<string, string | undefined> = {};
  for (const [name, tier] of Object.entries(cfg.tiers)) variants[name] = configuredVariant(family, tier);
  const traffic = parseTraffic(readFileSync(values.traffic, 'utf8'), values.traffic);
  const modelTiers = Object.fromEntries(Object.entries(cfg.models).map(([m, s]) => [m, s.tier]));
  const reports: { policyFile: string; report: SimulationReport }[] = [];
  for (const file of values.policy) {
    const routing = loadRoutingFile(file, tierNames);
    // Priors: the candidate file's profiles win over the config's for the same tier.
    const withPriors = { ...routing, profiles: { ...cfg.routing.profiles, ...routing.profiles } };
    const profiles = new TierProfiles(withPriors, variants, family).snapshot();
    const report = simulate({
      routing,
      traffic,
      profiles,
      modelTiers,
      defaultModel: Object.keys(cfg.models)[0] ?? '',
    });
    reports.push({ policyFile: file, report });
    if (values.json !== true) out.write(`${formatReport(file, report)}\n`);
  }
  if (values.json === true) out.write(`${JSON.stringify(reports, null, 2)}\n`);
  return 0;
}
