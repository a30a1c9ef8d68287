import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { referenceVariant } from '../routing/accuracy.js';
import type { Tier } from '../tiers/tier.js';
import type { AccuracyProfiles, VariantAccuracy } from '../family/accuracy-profiles.js';
import { PROFILES_FORMAT } from '../family/accuracy-profiles.js';
import { loadCommittedSlice, loadFullSplit, type EvalSlice } from './eval-slice.js';
import type { Progress } from './progress.js';
import { rougeL } from './rouge.js';
import { selectTargets, type Target } from './targets.js';
import { TierHost } from './tier-host.js';

export interface EvalOptions {
  readonly tiers?: readonly string[] | undefined;
  /** Score at most this many tokens (whole windows). */
  readonly maxTokens?: number | undefined;
  /** The whole validation split instead of the committed slice. */
  readonly full: boolean;
  /** Every manifest variant of each configured tier's framework (default) or only what is configured. */
  readonly allVariants: boolean;
  /** Greedy-continuation prompts for the ROUGE-L task score. */
  readonly taskPrompts: number;
  readonly promptTokens: number;
  readonly continuationTokens: number;
}

export const DEFAULT_EVAL: Omit<EvalOptions, 'tiers' | 'maxTokens'> = {
  full: false,
  allVariants: true,
  taskPrompts: 16,
  promptTokens: 64,
  continuationTokens: 32,
};

interface Measured {
  readonly target: Target;
  readonly variant: string;
  readonly framework: string;
  readonly precision: string;
  readonly perplexity: number;
  readonly rougeL: number;
  readonly nextTokenAccuracy: number;
  readonly seconds: number;
}

/** Perplexity (through Tier.score) and the greedy-continuation task score of every target. */
export async function runEval(
  config: Config,
  logger: Logger,
  options: EvalOptions,
  progress: Progress,
): Promise<AccuracyProfiles> {
  const host = await TierHost.open(config, logger);
  try {
    const slice = options.full
      ? loadFullSplit(host.family, host.tokenizer, 256, options.maxTokens)
      : loadCommittedSlice(host.family, options.maxTokens);
    const targets = selectTargets(config, host.family, {
      tiers: options.tiers,
      allVariants: options.allVariants,
      includeEcho: false,
    });
    const measured: Measured[] = [];
    for (const target of targets) {
      const variant = host.variantOf(target);
      if (variant === undefined) continue;
      const { tier } = await host.start(target);
      try {
        const info = tier.info();
        const t0 = performance.now();
        const perplexity = await scorePerplexity(tier, slice, progress, target.name);
        const task = await taskScore(tier, slice, options, progress, target.name);
        const seconds = (performance.now() - t0) / 1000;
        measured.push({
          target,
          variant,
          framework: info.framework,
          precision: info.precision,
          perplexity,
          ...task,
          seconds,
        });
        logger.info({ target: target.name, variant, perplexity, rougeL: task.rougeL }, 'evaluated');
      } finally {
        await tier.close();
      }
    }
    return buildProfiles(host, slice, options, measured);
  } finally {
    await host.tokenizer.close();
  }
}

/** exp(mean NLL) over every scored token of every window. */
export async function scorePerplexity(
  tier: Tier,
  slice: EvalSlice,
  progress: Progress,
  label: string,
): Promise<number> {
  let nll = 0;
  let n = 0;
  progress.begin(`ppl ${label}`, slice.windows.length);
  for (const window of slice.windows) {
    const logprobs = await tier.score(window);
    for (const lp of logprobs) nll -= lp;
    n += logprobs.length;
    progress.tick(n > 0 ? `ppl ${Math.exp(nll / n).toFixed(3)}` : '');
  }
  const ppl = Math.exp(nll / n);
  progress.end(`${label}: perplexity ${ppl.toFixed(4)} over ${n} tokens`);
  return ppl;
}

/**
 * Task-style score: the first `promptTokens` of a window as the prompt, greedy decoding of
 * `continuationTokens` (stop tokens off, so every tier produces the same length), compared with
 * the text that really follows by ROUGE-L; plus whether the first generated token is the true one.
 */
async function taskScore(
  tier: Tier,
  slice: EvalSlice,
  options: EvalOptions,
  progress: Progress,
  label: string,
): Promise<{ rougeL: number; nextTokenAccuracy: number }> {
  const need = options.promptTokens + options.continuationTokens;
  const windows = slice.windows.filter((w) => w.length >= need).slice(0, options.taskPrompts);
  if (windows.length === 0) return { rougeL: 0, nextTokenAccuracy: 0 };
  let rouge = 0;
  let hits = 0;
  progress.begin(`task ${label}`, windows.length);
  for (const w of windows) {
    const prompt = w.slice(0, options.promptTokens);
    const reference = w.slice(options.promptTokens, need);
    const out: number[] = [];
    const request = {
      tokens: prompt,
      sampling: { temperature: 0, topP: 1, topK: 0 },
      maxTokens: options.continuationTokens,
      stopTokens: [],
      topLogprobs: 0,
    };
    for await (const e of tier.generate(request, new AbortController().signal)) {
      if (e.kind === 'tokens') out.push(...e.tokens);
    }
    rouge += rougeL(out, reference);
    if (out[0] === reference[0]) hits++;
    progress.tick();
  }
  progress.end();
  return { rougeL: rouge / windows.length, nextTokenAccuracy: hits / windows.length };
}

function buildProfiles(
  host: TierHost,
  slice: EvalSlice,
  options: EvalOptions,
  measured: readonly Measured[],
): AccuracyProfiles {
  // The reference is the FP32 model as trained (PyTorch) when measured in this run, else any
  // measured FP32 variant, else the manifest's reference perplexity (then ratios mix slices).
  const fp32 = (m: Measured): boolean => /^f(p)?32$/i.test(m.precision);
  const refRun = measured.find((m) => m.framework === 'pytorch' && fp32(m)) ?? measured.find(fp32);
  const manifestRef = referenceVariant(host.family);
  const reference =
    refRun !== undefined
      ? { variant: refRun.variant, perplexity: refRun.perplexity, measured: true }
      : {
          variant: manifestRef?.id ?? 'unknown',
          perplexity: manifestRef?.perplexity ?? Number.NaN,
          measured: false,
        };
  const variants: Record<string, VariantAccuracy> = {};
  const tiers: Record<string, { variant: string; accuracy: number }> = {};
  for (const m of measured) {
    const relativeAccuracy = Math.min(
      1,
      Math.exp(-(Math.log(m.perplexity) - Math.log(reference.perplexity))),
    );
    variants[m.variant] = {
      framework: m.framework,
      precision: m.precision,
      target: m.target.name,
      perplexity: round(m.perplexity, 4),
      manifestPerplexity: host.family.variants.find((v) => v.id === m.variant)?.perplexity,
      relativeAccuracy: round(relativeAccuracy, 6),
      degradationPct: round((m.perplexity / reference.perplexity - 1) * 100, 3),
      rougeL: round(m.rougeL, 4),
      nextTokenAccuracy: round(m.nextTokenAccuracy, 4),
      scoredTokens: slice.tokens,
      seconds: round(m.seconds, 2),
    };
    if (m.target.name === m.target.tier)
      tiers[m.target.tier] = { variant: m.variant, accuracy: round(relativeAccuracy, 6) };
  }
  return {
    format: PROFILES_FORMAT,
    family: host.family.id,
    generatedAt: new Date().toISOString(),
    slice: { source: slice.source, windows: slice.windows.length, tokens: slice.tokens },
    task: {
      metric: 'rouge-l',
      prompts: Math.min(options.taskPrompts, slice.windows.length),
      promptTokens: options.promptTokens,
      continuationTokens: options.continuationTokens,
    },
    reference: { ...reference, perplexity: round(reference.perplexity, 4) },
    variants,
    tiers,
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
