/**
 * Shared set-up for the ONNX tier tests: the reference model family's files in models/tiny/.
 * Outputs are never hard-coded: expectations come from golden.json (PyTorch FP32).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { manifestContextLength } from '../../../src/tiers/onnx/create-onnx-tier.js';
import { OnnxTier, type OnnxTierDeps, type OnnxTierOptions } from '../../../src/tiers/onnx/onnx-tier.js';
import type { GenerateRequest, Tier } from '../../../src/tiers/tier.js';
import { flat, type FlatEvent } from '../../helpers/tier-events.js';

export const FAMILY_DIR = resolve('models/tiny');

export interface GoldenPrompt {
  readonly text: string;
  readonly ids: number[];
  readonly next_token_logits: number[];
  readonly greedy: number[];
}

export interface Golden {
  readonly vocab_size: number;
  readonly bos_id: number;
  readonly prompts: GoldenPrompt[];
}

export function readGolden(): Golden {
  return JSON.parse(readFileSync(resolve(FAMILY_DIR, 'golden.json'), 'utf8')) as Golden;
}

/** The family's context length: the manifest's, else the build config's max_seq_len. */
export function familyContextLength(): number {
  const fromManifest = manifestContextLength(loadModelFamily(FAMILY_DIR));
  if (fromManifest !== undefined) return fromManifest;
  const config = JSON.parse(readFileSync(resolve('models/config.json'), 'utf8')) as { max_seq_len: number };
  return config.max_seq_len;
}

export function makeTier(
  file: string,
  overrides: Partial<OnnxTierOptions> = {},
  deps: OnnxTierDeps = {},
): OnnxTier {
  return new OnnxTier(
    {
      name: 'main',
      model: {
        path: resolve(FAMILY_DIR, file),
        modelId: 'tiny',
        variant: file,
        precision: 'fp32',
        contextLength: familyContextLength(),
      },
      workers: 1,
      intraOpThreads: 1,
      maxBatchSize: 16,
      maxQueueDelayMs: 2,
      ...overrides,
    },
    deps,
  );
}

export const GREEDY = { temperature: 0, topK: 0, topP: 1 } as const;

export function request(
  tokens: readonly number[],
  maxTokens: number,
  extra: Partial<GenerateRequest> = {},
): GenerateRequest {
  return { tokens, sampling: GREEDY, maxTokens, stopTokens: [], topLogprobs: 0, ...extra };
}

/** Runs one generation to its end; returns the tokens and the finish reason. */
export async function collect(
  tier: Tier,
  req: GenerateRequest,
  signal: AbortSignal = new AbortController().signal,
): Promise<{ tokens: number[]; events: FlatEvent[]; reason: string | undefined }> {
  const events: FlatEvent[] = [];
  for await (const e of flat(tier.generate(req, signal))) events.push(e);
  const tokens = events.flatMap((e) => (e.kind === 'token' ? [e.token] : []));
  const finish = events.find((e) => e.kind === 'finish');
  return { tokens, events, reason: finish?.kind === 'finish' ? finish.reason : undefined };
}
