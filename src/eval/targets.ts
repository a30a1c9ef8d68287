import type { Config, TierConfig } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import { configuredVariant, frameworkOfKind } from '../tiers/registry.js';

/** One thing to evaluate or benchmark: a tier name and the exact tier config it is built from. */
export interface Target {
  /** "edge", or "edge@gguf-q8_0" when a configured tier is re-pointed at another variant. */
  readonly name: string;
  /** The configured tier this target comes from. */
  readonly tier: string;
  readonly config: TierConfig;
}

export interface TargetOptions {
  /** Only these configured tiers (undefined: all). */
  readonly tiers?: readonly string[] | undefined;
  /**
   * Also every other manifest variant of each configured tier's framework, with the tier's
   * options (threads, batching, …) unchanged: the matrix compares variants served the same way.
   */
  readonly allVariants: boolean;
  /** Include echo tiers (they measure the gateway itself, not a framework). */
  readonly includeEcho: boolean;
}

export class TargetError extends Error {
  readonly code = 'TIERGATE_ERR_EVAL_TARGET';
}

/** The targets of an eval or bench run, in config order, variants of one tier together. */
export function selectTargets(config: Config, family: ModelFamily, options: TargetOptions): Target[] {
  const names = Object.keys(config.tiers);
  for (const t of options.tiers ?? []) {
    if (!names.includes(t))
      throw new TargetError(`no tier named "${t}" in the config (tiers: ${names.join(', ')})`);
  }
  const out: Target[] = [];
  const seen = new Set<string>();
  for (const [tier, tierConfig] of Object.entries(config.tiers)) {
    if (options.tiers !== undefined && !options.tiers.includes(tier)) continue;
    if (tierConfig.kind === 'echo') {
      if (options.includeEcho) out.push({ name: tier, tier, config: tierConfig });
      continue;
    }
    out.push({ name: tier, tier, config: tierConfig });
    // The tier's `model` may be a variant id or a file name; compare variants by id.
    seen.add(`${tierConfig.kind}:${configuredVariant(family, tierConfig) ?? tierConfig.model}`);
    if (!options.allVariants) continue;
    const framework = frameworkOfKind(tierConfig.kind);
    for (const v of family.variants) {
      if (v.framework !== framework) continue;
      const key = `${tierConfig.kind}:${v.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: `${tier}@${v.id}`, tier, config: { ...tierConfig, model: v.id } as TierConfig });
    }
  }
  return out;
}
