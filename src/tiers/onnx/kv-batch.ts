/**
 * The KV cache of a batch of sequences decoded together, in the layout the decoder consumes:
 * per layer a key and a value tensor [rows, kvHeads, capacity, headDim].
 *
 * Sequences have different lengths, so each row is left-padded: row r's `lengths[r]` real
 * positions sit right-aligned at columns [width - lengths[r], width), and the pad columns are
 * zeros masked out by attention_mask. Left padding means every row appends its next position at
 * the same column. With a `present` decoder (past + new as outputs) capacity equals width and
 * the outputs are adopted as the next step's past (advance). With an `append` decoder (only the
 * new positions as outputs) the cache keeps spare columns [width, capacity), zeros the mask
 * hides, and each step writes its new column in place (append): the decoder then never copies
 * the cache (docs/main-tier.md "KV cache in place"). Rows are re-packed (one contiguous copy per
 * row, head and tensor) when a sequence joins or leaves or the spare columns run out; re-packing
 * also trims columns that became padding for every row, so a finished long sequence does not
 * keep costing attention width.
 */

import type { KvArena } from './kv-arena.js';

export interface KvShape {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** A cache to copy rows from: tensors in `past_key_values` order (l0.key, l0.value, l1.key, …). */
export interface KvSource {
  readonly tensors: readonly Float32Array[];
  readonly width: number;
  /** Columns per row and head in `tensors` (≥ width). */
  readonly capacity: number;
  readonly lengths: readonly number[];
}

/** Which row of which source a row of the new batch comes from. */
export interface RowRef {
  readonly source: KvSource;
  readonly row: number;
}

export class KvBatch implements KvSource {
  readonly shape: KvShape;
  readonly tensors: Float32Array[];
  width: number;
  capacity: number;
  readonly lengths: number[];

  private constructor(
    shape: KvShape,
    tensors: Float32Array[],
    width: number,
    lengths: number[],
    capacity = width,
  ) {
    this.shape = shape;
    this.tensors = tensors;
    this.width = width;
    this.capacity = capacity;
    this.lengths = lengths;
  }

  static empty(shape: KvShape): KvBatch {
    const tensors = Array.from({ length: shape.layers * 2 }, () => new Float32Array(0));
    return new KvBatch(shape, tensors, 0, []);
  }

  /** Wraps the `present` outputs of a single-sequence prefill (no padding). */
  static single(shape: KvShape, tensors: Float32Array[], length: number): KvBatch {
    return new KvBatch(shape, tensors, length, [length]);
  }

  /**
   * Wraps the `present` outputs of a left-padded prefill of several prompts: row r's
   * `lengths[r]` positions are right-aligned in `width` columns. The pad columns hold what the
   * model computed for the pad tokens: finite values that attention_mask masks out.
   */
  static padded(shape: KvShape, tensors: Float32Array[], width: number, lengths: readonly number[]): KvBatch {
    return new KvBatch(shape, tensors, width, [...lengths]);
  }

  get rows(): number {
    return this.lengths.length;
  }

  /**
   * Builds a batch from rows of other caches; width is the longest row, and `spare` zeroed
   * columns follow it (0 for a `present` decoder). With an arena the result lives in reused
   * memory (never in the buffers of `current`, the cache being re-packed); without one it is
   * freshly allocated.
   */
  static pack(
    shape: KvShape,
    refs: readonly RowRef[],
    arena?: KvArena,
    current?: KvSource,
    spare = 0,
  ): KvBatch {
    const lengths = refs.map((r) => r.source.lengths[r.row] as number);
    const width = lengths.reduce((a, b) => Math.max(a, b), 0);
    const capacity = width + spare;
    const { kvHeads, headDim } = shape;
    const tensors: Float32Array[] = [];
    for (let t = 0; t < shape.layers * 2; t++) {
      const size = refs.length * kvHeads * capacity * headDim;
      const dst = arena ? arena.take(t, size, current?.tensors[t]) : new Float32Array(size);
      refs.forEach((ref, r) => {
        const src = ref.source.tensors[t] as Float32Array;
        const len = lengths[r] as number;
        const { width: srcWidth, capacity: srcCapacity } = ref.source;
        if (srcWidth === width && srcCapacity === capacity) {
          // Same layout (e.g. another row left): the row's [kvHeads, capacity, headDim] block,
          // padding and zeroed spare columns included, is contiguous in both tensors.
          const block = kvHeads * capacity * headDim;
          dst.set(src.subarray(ref.row * block, (ref.row + 1) * block), r * block);
          return;
        }
        for (let h = 0; h < kvHeads; h++) {
          const from = ((ref.row * kvHeads + h) * srcCapacity + (srcWidth - len)) * headDim;
          const rowStart = (r * kvHeads + h) * capacity * headDim;
          const to = rowStart + (width - len) * headDim;
          const end = to + len * headDim;
          // Reused memory holds stale values: padding and spare columns must be zeros (masked,
          // but 0 × NaN = NaN).
          if (arena) {
            dst.fill(0, rowStart, to);
            dst.fill(0, end, rowStart + capacity * headDim);
          }
          dst.set(src.subarray(from, from + len * headDim), to);
        }
      });
      tensors.push(dst);
    }
    return new KvBatch(shape, tensors, width, lengths, capacity);
  }

  /** Adopts the decoder's `present` outputs after a one-token step: every row grew by one. */
  advance(present: Float32Array[]): void {
    present.forEach((p, i) => {
      this.tensors[i] = p;
    });
    this.width += 1;
    this.capacity = this.width;
    this.grow(1);
  }

  /**
   * Writes an `append` decoder's new positions (tensors [rows, kvHeads, count, headDim]) into
   * the spare columns after `width`: every row grew by `count`.
   */
  append(news: readonly Float32Array[], count: number): void {
    if (this.width + count > this.capacity) {
      throw new Error(`KV append of ${count} needs ${this.width + count} columns; capacity ${this.capacity}`);
    }
    const { kvHeads, headDim } = this.shape;
    const n = count * headDim;
    news.forEach((src, t) => {
      const dst = this.tensors[t] as Float32Array;
      for (let rh = 0; rh < this.rows * kvHeads; rh++) {
        const at = (rh * this.capacity + this.width) * headDim;
        dst.set(src.subarray(rh * n, (rh + 1) * n), at);
      }
    });
    this.width += count;
    this.grow(count);
  }

  private grow(count: number): void {
    for (let r = 0; r < this.lengths.length; r++) this.lengths[r] = (this.lengths[r] as number) + count;
  }

  /** Spare columns left for `append`. */
  get spare(): number {
    return this.capacity - this.width;
  }

  /** Columns that are padding in every row (re-packing would drop them). */
  get sharedPadding(): number {
    return this.width - this.lengths.reduce((a, b) => Math.max(a, b), 0);
  }
}
