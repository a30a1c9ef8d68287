/**
 * The family's LLaMA forward pass in TensorFlow.js ops, op for op the maths of
 * models/lib/tiergate_model/llama.py: RMSNorm (x · rsqrt(mean(x²) + eps) · gain), rotary
 * embedding on adjacent pairs (llama.cpp's layout), grouped-query attention (query head h reads kv
 * head h / rep), SwiGLU, tied or untied output. One call runs B rows of T tokens each over a past
 * KV cache (decode: T = 1 for every sequence of the batch; prefill and score: B = 1).
 *
 * The cache of a layer is K as [B, kvHeads, headDim, S] (already transposed for Q·Kᵀ, so the
 * scores are a plain batched product) and V as [B, kvHeads, S, headDim]. Padding inside rows is
 * masked by the caller's additive bias (kv-batch.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaShape, LlamaWeights } from './llama-weights.js';

/** Per layer: K [B, kvHeads, headDim, S] and V [B, kvHeads, S, headDim]. */
export interface KvTensors {
  readonly k: readonly tf.Tensor4D[];
  readonly v: readonly tf.Tensor4D[];
}

export interface ForwardInput {
  /** Token ids, B × T, row-major. */
  readonly ids: Int32Array;
  readonly rows: number;
  readonly steps: number;
  /** Absolute position of each token (its rotary angle), B × T. */
  readonly positions: Int32Array;
  /** Additive attention mask, B × (rep·T) × S (S = past + T): 0 to attend, -1e9 not to. */
  readonly bias: Float32Array;
  readonly past?: KvTensors | undefined;
  /** 'last': logits of each row's last token only; 'all': of every token. */
  readonly logits: 'last' | 'all';
}

export interface ForwardOutput {
  /** B × vocab ('last') or B × T × vocab ('all'). */
  readonly logits: Float32Array;
  /** past + this call's keys and values (the caller owns and disposes them). */
  readonly present: KvTensors;
}

/** A large finite negative instead of -inf, as llama.py does: fully masked rows stay free of NaN. */
export const MASKED = -1e9;

/** Rotary tables for x · cos + swap(x) · sin (pairs (x0, x1) → (-x1, x0)): [B, T, 1, headDim]. */
function ropeTables(shape: LlamaShape, input: ForwardInput): [tf.Tensor4D, tf.Tensor4D] {
  const { rows, steps, positions } = input;
  const half = shape.headDim / 2;
  const cos = new Float32Array(rows * steps * shape.headDim);
  const sin = new Float32Array(cos.length);
  // llama.py computes the frequencies and angles in float32: fround at each step reproduces it.
  const inv = Array.from({ length: half }, (_, i) =>
    Math.fround(1 / Math.fround(shape.ropeTheta ** Math.fround((2 * i) / shape.headDim))),
  );
  for (let r = 0; r < rows * steps; r++) {
    const pos = positions[r] as number;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * (inv[i] as number));
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const at = r * shape.headDim + 2 * i;
      cos[at] = c;
      cos[at + 1] = c;
      sin[at] = -s;
      sin[at + 1] = s;
    }
  }
  const dims: [number, number, number, number] = [rows, steps, 1, shape.headDim];
  return [tf.tensor4d(cos, dims), tf.tensor4d(sin, dims)];
}

function rmsNorm(x: tf.Tensor2D, gain: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), gain);
}

/** Rotates adjacent pairs of x [B, T, heads, headDim]. */
function rope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [b, t, h, d] = x.shape;
  const swapped = tf.reshape(tf.reverse(tf.reshape(x, [b, t, h, d / 2, 2]), -1), [b, t, h, d]);
  return tf.add(tf.mul(x, cos), tf.mul(swapped, sin));
}

export function forward(w: LlamaWeights, input: ForwardInput): ForwardOutput {
  const s = w.shape;
  const { rows: B, steps: T } = input;
  const N = B * T;
  const rep = s.heads / s.kvHeads;
  const qCols = s.heads * s.headDim;
  const kvCols = s.kvHeads * s.headDim;
  const pastLen = input.past === undefined ? 0 : (input.past.v[0]?.shape[2] ?? 0);
  const S = pastLen + T;
  const out = tf.tidy(() => {
    const [cos, sin] = ropeTables(s, input);
    const bias = tf.tensor4d(input.bias, [B, 1, rep * T, S]);
    const scale = 1 / Math.sqrt(s.headDim);
    let x = tf.gather(w.embedding, tf.tensor1d(input.ids, 'int32')) as tf.Tensor2D;
    const ks: tf.Tensor4D[] = [];
    const vs: tf.Tensor4D[] = [];
    w.layers.forEach((layer, l) => {
      const qkv = tf.matMul(rmsNorm(x, layer.attnNorm, s.normEps), layer.wqkv);
      const qk = rope(
        tf.reshape(tf.slice(qkv, [0, 0], [N, qCols + kvCols]), [B, T, s.heads + s.kvHeads, s.headDim]),
        cos,
        sin,
      );
      const q = tf.slice(qk, [0, 0, 0, 0], [B, T, s.heads, s.headDim]);
      const k = tf.slice(qk, [0, 0, s.heads, 0], [B, T, s.kvHeads, s.headDim]);
      const v = tf.reshape(tf.slice(qkv, [0, qCols + kvCols], [N, kvCols]), [
        B,
        T,
        s.kvHeads,
        s.headDim,
      ]) as tf.Tensor4D;
      let kT = tf.transpose(k, [0, 2, 3, 1]);
      let vT = tf.transpose(v, [0, 2, 1, 3]);
      if (input.past !== undefined) {
        kT = tf.concat([input.past.k[l] as tf.Tensor4D, kT], 3);
        vT = tf.concat([input.past.v[l] as tf.Tensor4D, vT], 2);
      }
      ks.push(kT);
      vs.push(vT);
      // [B, heads, T, d] grouped as [B, kvHeads, rep·T, d]: head h = kv·rep + r uses kv head kv.
      const qg = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B, s.kvHeads, rep * T, s.headDim]);
      const scores = tf.add(tf.mul(tf.matMul(qg, kT), scale), bias);
      const ctx = tf.matMul(tf.softmax(scores), vT);
      const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [B, s.heads, T, s.headDim]), [0, 2, 1, 3]), [
        N,
        qCols,
      ]);
      x = tf.add(x, tf.matMul(merged, layer.wo));
      const gu = tf.matMul(rmsNorm(x, layer.ffnNorm, s.normEps), layer.wGateUp);
      const gate = tf.slice(gu, [0, 0], [N, s.ffnDim]);
      const up = tf.slice(gu, [0, s.ffnDim], [N, s.ffnDim]);
      x = tf.add(x, tf.matMul(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), layer.wDown));
    });
    let last = x;
    if (input.logits === 'last' && T > 1) {
      last = tf.reshape(tf.slice(tf.reshape(x, [B, T, s.dim]), [0, T - 1, 0], [B, 1, s.dim]), [B, s.dim]);
    }
    const logits = tf.matMul(rmsNorm(last, w.outputNorm, s.normEps), w.output);
    return { logits, ks, vs };
  });
  const logits = out.logits.dataSync() as Float32Array;
  out.logits.dispose();
  return { logits, present: { k: out.ks, v: out.vs } };
}

/** The causal bias of one sequence's prompt of T tokens over no past: [rep·T, T]. */
export function causalBias(shape: LlamaShape, steps: number): Float32Array {
  const rep = shape.heads / shape.kvHeads;
  const bias = new Float32Array(rep * steps * steps);
  for (let r = 0; r < rep; r++) {
    for (let i = 0; i < steps; i++) {
      bias.fill(MASKED, (r * steps + i) * steps + i + 1, (r * steps + i + 1) * steps);
    }
  }
  return bias;
}

export function disposeKv(kv: KvTensors | undefined): void {
  if (kv !== undefined) tf.dispose([...kv.k, ...kv.v]);
}
