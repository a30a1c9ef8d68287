/**
 * Reads the shape of a decoder from an ONNX session's own input/output metadata, so that any
 * decoder exported in the optimum / onnxruntime-genai convention runs, not only ours:
 *   inputs  input_ids [b, s], attention_mask [b, past + s], position_ids [b, s] (optional),
 *           past_key_values.N.key|value [b, kv_heads, past, head_dim]
 *   outputs logits [b, s, vocab], present.N.key|value [b, kv_heads, past + s, head_dim]
 * https://huggingface.co/docs/optimum/exporters/onnx/usage_guides/export_a_model (decoder I/O)
 * or tiergate's own "append" form (models/lib/tiergate_model/onnx_writer.py), whose KV outputs
 * are only the new positions, new_key_values.N.key|value [b, kv_heads, s, head_dim]: the cache
 * stays in the caller's buffer (docs/main-tier.md "KV cache in place").
 */
import { OnnxTierError } from './onnx-tier-error.js';

/** The subset of onnxruntime's ValueMetadata this module reads (kept structural for tests). */
export interface IoMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}

export type IdType = 'int64' | 'int32';

/** present: outputs past + new (the optimum convention); append: outputs only the new positions. */
export type KvOutputs = 'present' | 'append';

export interface DecoderSpec {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Vocabulary size from the logits output, when the export states it statically. */
  readonly vocabSize: number | undefined;
  readonly inputIdsType: IdType;
  readonly attentionMaskType: IdType;
  /** Without position_ids the model derives positions itself; batching then stays at 1. */
  readonly positionIds: IdType | undefined;
  readonly kvOutputs: KvOutputs;
}

/** `layer.key` or `layer.value` of KV tensor `t` (order: l0.key, l0.value, l1.key, …). */
const kvSuffix = (t: number): string => `${Math.floor(t / 2)}.${t % 2 === 0 ? 'key' : 'value'}`;

/** The name of KV input `t`: past_key_values.N.key|value. */
export function kvInputName(t: number): string {
  return `past_key_values.${kvSuffix(t)}`;
}

/** The name of KV output `t`: present.N.* or, for an `append` decoder, new_key_values.N.*. */
export function kvOutputName(kvOutputs: KvOutputs, t: number): string {
  return `${kvOutputs === 'append' ? 'new_key_values' : 'present'}.${kvSuffix(t)}`;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

function idType(meta: IoMetadata | undefined): IdType | undefined {
  if (meta === undefined) return undefined;
  return meta.type === 'int32' ? 'int32' : 'int64';
}

function staticDim(meta: IoMetadata, axis: number): number | undefined {
  const d = meta.shape?.[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/**
 * Validates the decoder convention and extracts layer count, KV heads and head size.
 * Throws TG_ONNX_NOT_A_DECODER naming every missing input/output.
 */
export function readDecoderSpec(
  inputs: readonly IoMetadata[],
  outputs: readonly IoMetadata[],
  source: string,
): DecoderSpec {
  const byName = new Map(inputs.map((m) => [m.name, m]));
  const outNames = new Set(outputs.map((m) => m.name));
  const missing: string[] = [];
  for (const name of ['input_ids', 'attention_mask']) if (!byName.has(name)) missing.push(name);

  let layers = 0;
  for (const m of inputs) {
    const match = PAST.exec(m.name);
    if (match) layers = Math.max(layers, Number(match[1]) + 1);
  }
  if (layers === 0) missing.push('past_key_values.0.key', 'past_key_values.0.value');
  const kvOutputs: KvOutputs = outNames.has('new_key_values.0.key') ? 'append' : 'present';
  for (let t = 0; t < layers * 2; t++) {
    const past = kvInputName(t);
    if (!byName.has(past)) missing.push(past);
    const out = kvOutputName(kvOutputs, t);
    if (!outNames.has(out)) missing.push(`${out} (output)`);
  }
  if (!outNames.has('logits')) missing.push('logits (output)');
  if (missing.length > 0) {
    throw new OnnxTierError(
      'TG_ONNX_NOT_A_DECODER',
      `${source} is not a decoder with KV cache in the optimum/onnxruntime-genai convention: ` +
        `missing ${missing.join(', ')}`,
    );
  }

  const past0 = byName.get('past_key_values.0.key') as IoMetadata;
  if (past0.type !== undefined && past0.type !== 'float32') {
    throw new OnnxTierError(
      'TG_ONNX_NOT_A_DECODER',
      `${source}: KV cache type ${past0.type} is not supported (float32 only)`,
    );
  }
  const kvHeads = staticDim(past0, 1);
  const headDim = staticDim(past0, 3);
  if (kvHeads === undefined || headDim === undefined) {
    throw new OnnxTierError(
      'TG_ONNX_NOT_A_DECODER',
      `${source}: past_key_values.0.key must have static kv-head and head-size axes ` +
        `([batch, kv_heads, past, head_dim]); got [${(past0.shape ?? []).join(', ')}]`,
    );
  }
  const logits = outputs.find((m) => m.name === 'logits') as IoMetadata;
  return {
    layers,
    kvHeads,
    headDim,
    vocabSize: staticDim(logits, 2),
    inputIdsType: idType(byName.get('input_ids')) ?? 'int64',
    attentionMaskType: idType(byName.get('attention_mask')) ?? 'int64',
    positionIds: idType(byName.get('position_ids')),
    kvOutputs,
  };
}
