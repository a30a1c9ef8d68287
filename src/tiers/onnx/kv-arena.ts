/**
 * Reusable memory for the batched KV cache. A fresh multi-megabyte Float32Array costs page faults
 * on first touch, and on a busy machine that was measured at 10–180 ms for 8 × 2 MB against under
 * 1 ms for re-using warm buffers (bench/tiers/kv-merge.ts shows the effect on re-packing). So each
 * KV tensor index owns two growable buffers: a step reads the past from one and ORT writes the
 * present into the other (pre-allocated outputs), and re-packing writes into whichever one the
 * current cache does not occupy. Steady-state decoding then allocates nothing.
 */
export class KvArena {
  /** Per tensor index, two buffers (ping-pong). */
  private readonly slots: [ArrayBuffer, ArrayBuffer][];

  constructor(tensors: number) {
    this.slots = Array.from({ length: tensors }, () => [new ArrayBuffer(0), new ArrayBuffer(0)]);
  }

  /**
   * A view of `length` floats for tensor `index` in the buffer that `inUse` does not occupy
   * (its contents are stale: callers overwrite or zero what they need).
   */
  take(index: number, length: number, inUse: Float32Array | undefined): Float32Array {
    const pair = this.slots[index] as [ArrayBuffer, ArrayBuffer];
    const which = inUse !== undefined && inUse.buffer === pair[0] ? 1 : 0;
    const bytes = length * Float32Array.BYTES_PER_ELEMENT;
    if (pair[which].byteLength < bytes) {
      // Grow by half again so a cache that widens by one position per step reallocates rarely.
      pair[which] = new ArrayBuffer(Math.ceil(bytes * 1.5));
    }
    return new Float32Array(pair[which], 0, length);
  }

  /** Bytes held (for logs and docs). */
  get bytes(): number {
    return this.slots.reduce((n, [a, b]) => n + a.byteLength + b.byteLength, 0);
  }
}
