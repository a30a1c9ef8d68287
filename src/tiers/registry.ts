import { basename } from 'node:path';
import type { TierConfig, TierConfigOf, TierKind } from '../config/index.js';
import type { ModelFamily } from '../family/manifest.js';
import type { Tier, TierFramework } from './tier.js';
import type { TierDeps } from './tier-deps.js';
import { EchoTier } from './echo/echo-tier.js';
import { LlamaCppTier } from './llamacpp/llamacpp-tier.js';
import { createOnnxTier } from './onnx/create-onnx-tier.js';
import { createRemoteTier } from './remote/create-remote-tier.js';
import { createTfjsTier } from './tfjs/create-tfjs-tier.js';

export type { TierDeps } from './tier-deps.js';

export type TierFactory<K extends TierKind> = (
  name: string,
  options: TierConfigOf<K>,
  deps: TierDeps,
) => Tier;

/** What the gateway knows of a tier kind: how to build one, and the framework its variants are for. */
interface TierKindEntry<K extends TierKind> {
  readonly create: TierFactory<K>;
  /** The manifest framework a model file of this kind is served by (undefined: no model file). */
  readonly framework: TierFramework | undefined;
}

/**
 * kind → entry: the one place outside a kind's own folder that names it (with its config schema
 * in src/config/tiers/). Nothing else in the gateway switches on a tier's kind.
 */
const kinds: { readonly [K in TierKind]: TierKindEntry<K> } = {
  echo: { create: (name, options, deps) => new EchoTier(name, options, deps), framework: undefined },
  llamacpp: {
    create: (name, options, deps) => new LlamaCppTier(name, options, deps),
    framework: 'llama.cpp',
  },
  onnx: { create: (name, options, deps) => createOnnxTier(name, options, deps), framework: 'onnxruntime' },
  remote: { create: (name, options, deps) => createRemoteTier(name, options, deps), framework: 'pytorch' },
  tfjs: { create: (name, options, deps) => createTfjsTier(name, options, deps), framework: 'tensorflow' },
};

/** The manifest framework a tier kind serves model files of (undefined: echo, no model file). */
export function frameworkOfKind(kind: TierKind): TierFramework | undefined {
  return kinds[kind].framework;
}

export function createTier<K extends TierKind>(name: string, options: TierConfigOf<K>, deps: TierDeps): Tier {
  const entry = kinds[options.kind as K] as TierKindEntry<K>;
  return entry.create(name, options, deps);
}

/**
 * The manifest variant a tier config serves, without starting the tier (`tiergate simulate`): by
 * variant id, else by file name (preferring the variant of the kind's framework: PyTorch and
 * llama.cpp share the F32 GGUF). Undefined for a kind without a model file.
 */
export function configuredVariant(family: ModelFamily, tier: TierConfig): string | undefined {
  const framework = kinds[tier.kind].framework;
  if (framework === undefined || !('model' in tier)) return undefined;
  const model = tier.model;
  const byId = family.variants.find((v) => v.id === model);
  if (byId !== undefined) return byId.id;
  const byFile = family.variants.filter((v) => basename(v.file) === basename(model));
  return (byFile.find((v) => v.framework === framework) ?? byFile[0])?.id;
}
