import type { TObject } from '@sinclair/typebox';
import { EchoTierSchema, type EchoTierConfig } from './echo.js';
import { LlamaCppTierSchema, type LlamaCppTierConfig } from './llamacpp.js';
import { OnnxTierSchema, type OnnxTierConfig } from './onnx.js';
import { RemoteTierSchema, type RemoteTierConfig } from './remote.js';
import { TfjsTierSchema, type TfjsTierConfig } from './tfjs.js';

/**
 * Every tier kind's option schema, keyed by its `kind`. Adding a kind: write `<kind>.ts` with a
 * schema whose `kind` is a literal, add it here and to TierConfig, and register a factory in
 * src/tiers/registry.ts.
 */
export const tierSchemas = {
  echo: EchoTierSchema,
  llamacpp: LlamaCppTierSchema,
  onnx: OnnxTierSchema,
  remote: RemoteTierSchema,
  tfjs: TfjsTierSchema,
} as const satisfies Record<string, TObject>;

export type TierKind = keyof typeof tierSchemas;
export type TierConfig =
  EchoTierConfig | LlamaCppTierConfig | OnnxTierConfig | RemoteTierConfig | TfjsTierConfig;
export type TierConfigOf<K extends TierKind> = Extract<TierConfig, { kind: K }>;

export function isTierKind(kind: unknown): kind is TierKind {
  return typeof kind === 'string' && Object.hasOwn(tierSchemas, kind);
}

export type { EchoTierConfig, LlamaCppTierConfig, OnnxTierConfig, RemoteTierConfig, TfjsTierConfig };
