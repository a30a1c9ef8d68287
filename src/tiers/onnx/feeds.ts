/**
 * Builds the integer input tensors of one decoder run (input_ids, attention_mask, position_ids)
 * in the element type the model declares (int64 in optimum exports, int32 in some others).
 */
import ort from 'onnxruntime-node';
import type { IdType } from './decoder-spec.js';

/** A tensor of integer ids of the given type, filled from `values` (row-major). */
export function idTensor(type: IdType, values: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i] as number);
  return new ort.Tensor('int64', data, dims);
}

/**
 * attention_mask for a step of `count` new tokens (one by default) over a left-padded cache of
 * `width` used columns out of `capacity`: row r has zeros over its `width - lengths[r]` pad
 * columns and over the spare columns [width, capacity), and ones over its real past and the new
 * tokens.
 */
export function stepMask(
  type: IdType,
  lengths: readonly number[],
  width: number,
  capacity = width,
  count = 1,
): ort.Tensor {
  const cols = capacity + count;
  const dims = [lengths.length, cols];
  // Range fills, not per-element conversion: this runs on every decode step.
  if (type === 'int32') {
    const data = new Int32Array(lengths.length * cols).fill(1);
    lengths.forEach((len, r) => {
      data.fill(0, r * cols, r * cols + (width - len));
      data.fill(0, r * cols + width, r * cols + capacity);
    });
    return new ort.Tensor('int32', data, dims);
  }
  const data = new BigInt64Array(lengths.length * cols).fill(1n);
  lengths.forEach((len, r) => {
    data.fill(0n, r * cols, r * cols + (width - len));
    data.fill(0n, r * cols + width, r * cols + capacity);
  });
  return new ort.Tensor('int64', data, dims);
}

/** 0, 1, …, n-1 as a [1, n] tensor: the positions of a prompt decoded from an empty cache. */
export function rangeTensor(type: IdType, n: number): ort.Tensor {
  return idTensor(
    type,
    Array.from({ length: n }, (_, i) => i),
    [1, n],
  );
}
