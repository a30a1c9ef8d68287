/**
 * The KV cache of the sequences decoded together, as TensorFlow.js tensors (one K and one V
 * tensor per layer, one row per sequence; layouts in llama-forward.ts). A sequence's own cache
 * comes from its prefill (one row, no padding) and is packed into the batch when it joins.
 *
 * Rows of different lengths are packed left-aligned and zero-padded to the longest. Every step
 * then appends one column for all rows, so a row's valid positions are [0, prefix) and
 * [packWidth, width): the gap between is masked (MASKED in the bias), never read. Membership
 * changes (a sequence joins, finishes or is cancelled) re-pack the survivors without gaps, as
 * the ONNX tier's KvBatch does with its arrays (src/tiers/onnx/kv-batch.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MASKED, disposeKv, type KvTensors } from './llama-forward.js';

/** Row `row` of `source` (a batch, or a prefilled sequence as a batch of one). */
export interface RowRef {
  readonly source: KvBatch;
  readonly row: number;
}

export class KvBatch {
  private constructor(
    /** Query rows per kv head (heads / kvHeads): the bias repeats per group member. */
    private readonly rep: number,
    private kv: KvTensors | undefined,
    /** Valid (attended) positions of each row; also the next token's position. */
    readonly lengths: number[],
    private readonly prefix: readonly number[],
    private readonly packWidth: number,
    private widthNow: number,
  ) {}

  static empty(rep: number): KvBatch {
    return new KvBatch(rep, undefined, [], [], 0, 0);
  }

  /** A prefilled sequence's cache (one row of `length` positions, no padding). */
  static single(rep: number, kv: KvTensors, length: number): KvBatch {
    return new KvBatch(rep, kv, [length], [length], length, length);
  }

  get rows(): number {
    return this.lengths.length;
  }

  get width(): number {
    return this.widthNow;
  }

  get tensors(): KvTensors | undefined {
    return this.kv;
  }

  /** Additive mask of one decode step: [rows, rep, width + 1] (the new token attends itself). */
  stepBias(): Float32Array {
    const w = this.widthNow + 1;
    const bias = new Float32Array(this.rows * this.rep * w);
    for (let r = 0; r < this.rows; r++) {
      const from = this.prefix[r] as number;
      if (from >= this.packWidth) continue;
      for (let g = 0; g < this.rep; g++) {
        const at = (r * this.rep + g) * w;
        bias.fill(MASKED, at + from, at + this.packWidth);
      }
    }
    return bias;
  }

  /** Takes the step's presents (past + one column) as the cache; disposes the old tensors. */
  advance(present: KvTensors): void {
    disposeKv(this.kv);
    this.kv = present;
    this.widthNow++;
    for (let r = 0; r < this.lengths.length; r++) this.lengths[r] = (this.lengths[r] as number) + 1;
  }

  /**
   * A new batch of the given rows, gap-free and padded to the longest; the sources are left
   * intact (the caller disposes the batches it no longer needs).
   */
  static pack(layers: number, rep: number, refs: readonly RowRef[]): KvBatch {
    if (refs.length === 0) return KvBatch.empty(rep);
    const lengths = refs.map((r) => r.source.lengths[r.row] as number);
    const longest = Math.max(...lengths);
    const kv = tf.tidy(() => {
      const k: tf.Tensor4D[] = [];
      const v: tf.Tensor4D[] = [];
      for (let l = 0; l < layers; l++) {
        k.push(
          tf.concat(
            refs.map((r) => r.source.rowOf(l, r.row, 'k', longest)),
            0,
          ),
        );
        v.push(
          tf.concat(
            refs.map((r) => r.source.rowOf(l, r.row, 'v', longest)),
            0,
          ),
        );
      }
      return { k, v };
    });
    return new KvBatch(rep, kv, lengths, [...lengths], longest, longest);
  }

  dispose(): void {
    disposeKv(this.kv);
    this.kv = undefined;
  }

  /** Row `row` of layer `l`'s K (positions on axis 3) or V (axis 2), gap-free, padded to `width`. */
  private rowOf(l: number, row: number, which: 'k' | 'v', width: number): tf.Tensor4D {
    const kv = this.kv;
    if (kv === undefined) throw new Error('KV batch is empty');
    const t = (which === 'k' ? kv.k[l] : kv.v[l]) as tf.Tensor4D;
    const axis = which === 'k' ? 3 : 2;
    const take = (from: number, size: number): tf.Tensor4D => {
      const begin = [row, 0, 0, 0];
      const sizes = [1, -1, -1, -1];
      begin[axis] = from;
      sizes[axis] = size;
      return tf.slice(t, begin, sizes);
    };
    const prefix = this.prefix[row] as number;
    const tail = this.widthNow - this.packWidth;
    let out = prefix >= this.packWidth ? take(0, prefix + tail) : take(0, prefix);
    if (prefix < this.packWidth && tail > 0) out = tf.concat([out, take(this.packWidth, tail)], axis);
    const length = this.lengths[row] as number;
    if (length === width) return out;
    const pad: [number, number][] = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    pad[axis] = [0, width - length];
    return tf.pad(out, pad);
  }
}
