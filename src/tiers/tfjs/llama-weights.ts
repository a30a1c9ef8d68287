/**
 * The family's LLaMA weights as TensorFlow.js tensors, from an F32 or F16 GGUF (the tensor names
 * of models/lib/tiergate_model/llama.py's docstring). Each weight is laid out for the forward
 * pass once, at load:
 * - matrices are stored [in, out]: the wasm backend's matMul with transposeB re-transposes the
 *   weight on every call (19 vs 2.9 ms for 24 decode-shaped products, measured here);
 * - Q, K and V are one [dim, (H + 2·KVH)·head_dim] matrix, and gate and up one [dim, 2·ffn]:
 *   one product instead of three (two) per layer, each op costing microseconds of dispatch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GgufFormatError, GgufTensors, type GgufValue } from './gguf-tensors.js';

export interface LlamaShape {
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffnDim: number;
  readonly vocabSize: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  readonly contextLength: number;
  readonly tiedOutput: boolean;
}

export interface LayerWeights {
  readonly attnNorm: tf.Tensor1D;
  /** [dim, (heads + 2·kvHeads)·headDim]: Q, then K, then V columns. */
  readonly wqkv: tf.Tensor2D;
  /** [heads·headDim, dim] */
  readonly wo: tf.Tensor2D;
  readonly ffnNorm: tf.Tensor1D;
  /** [dim, 2·ffnDim]: gate, then up columns. */
  readonly wGateUp: tf.Tensor2D;
  /** [ffnDim, dim] */
  readonly wDown: tf.Tensor2D;
}

export interface LlamaWeights {
  readonly shape: LlamaShape;
  /** [vocab, dim]: rows gathered by token id. */
  readonly embedding: tf.Tensor2D;
  readonly layers: readonly LayerWeights[];
  readonly outputNorm: tf.Tensor1D;
  /** [dim, vocab]: the embedding transposed when the output is tied. */
  readonly output: tf.Tensor2D;
}

function num(meta: ReadonlyMap<string, GgufValue>, key: string, fallback?: number): number {
  const v = meta.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (fallback !== undefined) return fallback;
  throw new GgufFormatError(`GGUF metadata ${key} missing: not a LLaMA model file`);
}

export function readShape(file: GgufTensors): LlamaShape {
  const meta = file.metadata;
  const arch = meta.get('general.architecture');
  if (arch !== 'llama')
    throw new GgufFormatError(`${file.path}: architecture ${String(arch)}, expected llama`);
  const dim = num(meta, 'llama.embedding_length');
  const heads = num(meta, 'llama.attention.head_count');
  const embd = file.tensors.get('token_embd.weight');
  if (embd === undefined) throw new GgufFormatError(`${file.path}: no token_embd.weight`);
  const headDim = dim / heads;
  const ropeDims = num(meta, 'llama.rope.dimension_count', headDim);
  if (ropeDims !== headDim) {
    throw new GgufFormatError(
      `${file.path}: partial rotary (${ropeDims} of ${headDim} dims) is not supported`,
    );
  }
  return {
    dim,
    layers: num(meta, 'llama.block_count'),
    heads,
    kvHeads: num(meta, 'llama.attention.head_count_kv', heads),
    headDim,
    ffnDim: num(meta, 'llama.feed_forward_length'),
    vocabSize: embd.shape[0] as number,
    normEps: num(meta, 'llama.attention.layer_norm_rms_epsilon'),
    ropeTheta: num(meta, 'llama.rope.freq_base', 10000),
    contextLength: num(meta, 'llama.context_length'),
    tiedOutput: !file.tensors.has('output.weight'),
  };
}

/** Loads every weight (one GGUF tensor in JS memory at a time besides the tensors made). */
export function loadLlamaWeights(path: string): LlamaWeights {
  const file = new GgufTensors(path);
  try {
    const shape = readShape(file);
    const vector = (name: string): tf.Tensor1D => tf.tensor1d(file.read(name));
    // A GGUF [out, in] matrix (torch layout), transposed to [in, out].
    const matrix = (name: string): tf.Tensor2D => {
      const info = file.tensors.get(name);
      if (info === undefined || info.shape.length !== 2)
        throw new GgufFormatError(`${path}: no matrix ${name}`);
      const [rows, cols] = info.shape as [number, number];
      return tf.tidy(() => tf.transpose(tf.tensor2d(file.read(name), [rows, cols])));
    };
    const joined = (names: readonly string[]): tf.Tensor2D => {
      const parts = names.map(matrix);
      const out = tf.concat(parts, 1);
      tf.dispose(parts);
      return out;
    };
    const layers: LayerWeights[] = [];
    for (let l = 0; l < shape.layers; l++) {
      const b = `blk.${l}.`;
      layers.push({
        attnNorm: vector(`${b}attn_norm.weight`),
        wqkv: joined([`${b}attn_q.weight`, `${b}attn_k.weight`, `${b}attn_v.weight`]),
        wo: matrix(`${b}attn_output.weight`),
        ffnNorm: vector(`${b}ffn_norm.weight`),
        wGateUp: joined([`${b}ffn_gate.weight`, `${b}ffn_up.weight`]),
        wDown: matrix(`${b}ffn_down.weight`),
      });
    }
    const embedding = tf.tensor2d(file.read('token_embd.weight'), [shape.vocabSize, shape.dim]);
    return {
      shape,
      embedding,
      layers,
      outputNorm: vector('output_norm.weight'),
      output: shape.tiedOutput ? tf.transpose(embedding) : matrix('output.weight'),
    };
  } finally {
    file.close();
  }
}

export function disposeWeights(w: LlamaWeights): void {
  tf.dispose([w.embedding, w.outputNorm, w.output]);
  for (const l of w.layers) tf.dispose([l.attnNorm, l.wqkv, l.wo, l.ffnNorm, l.wGateUp, l.wDown]);
}
