/**
 * Reads a GGUF file's metadata and its F32/F16 tensors, one tensor at a time, without holding the
 * whole file: the layout models/lib/tiergate_model/gguf_reader.py reads for the PyTorch sidecar
 * (header, key/values, tensor table, data section aligned to `general.alignment`). F16 tensors are
 * widened exactly to float32. Quantized tensor types are refused: this tier computes in FP32.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const GGML_F32 = 0;
const GGML_F16 = 1;
/** Byte width of each fixed-size GGUF value type (8 string and 9 array are variable). */
const FIXED: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

export type GgufValue = number | bigint | boolean | string | readonly GgufValue[];

export interface GgufTensorInfo {
  readonly name: string;
  /** Row-major shape (GGUF lists dimensions innermost first; this is reversed). */
  readonly shape: readonly number[];
  readonly type: number;
  /** Absolute byte offset in the file. */
  readonly offset: number;
}

export class GgufFormatError extends Error {
  override readonly name = 'GgufFormatError';
}

/** A cursor over a header buffer that asks for more bytes when it runs out. */
class Cursor {
  pos = 0;
  constructor(
    public buf: Buffer,
    private readonly grow: (need: number) => Buffer,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.buf = this.grow(this.pos + n);
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`GGUF value too large at ${this.pos}`);
    return Number(v);
  }
  string(): string {
    const n = this.u64();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  value(type: number): GgufValue {
    if (type === 8) return this.string();
    if (type === 9) {
      const elem = this.u32();
      const count = this.u64();
      const out: GgufValue[] = [];
      for (let i = 0; i < count; i++) out.push(this.value(elem));
      return out;
    }
    const width = FIXED[type];
    if (width === undefined) throw new GgufFormatError(`unknown GGUF value type ${type}`);
    this.need(width);
    const b = this.buf;
    const p = this.pos;
    this.pos += width;
    switch (type) {
      case 0:
        return b.readUInt8(p);
      case 1:
        return b.readInt8(p);
      case 2:
        return b.readUInt16LE(p);
      case 3:
        return b.readInt16LE(p);
      case 4:
        return b.readUInt32LE(p);
      case 5:
        return b.readInt32LE(p);
      case 6:
        return b.readFloatLE(p);
      case 7:
        return b.readUInt8(p) !== 0;
      case 10:
        return b.readBigUInt64LE(p);
      case 11:
        return b.readBigInt64LE(p);
      default:
        return b.readDoubleLE(p);
    }
  }
}

/** An open GGUF file: its metadata, its tensor table, and reads of single tensors. */
export class GgufTensors {
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      const { metadata, tensors } = this.readHeader();
      this.metadata = metadata;
      this.tensors = tensors;
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /** The tensor as float32 values in row-major order (F16 widened). */
  read(name: string): Float32Array {
    const info = this.tensors.get(name);
    if (info === undefined) throw new GgufFormatError(`${this.path}: no tensor ${name}`);
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (info.type === GGML_F32) {
      const out = new Float32Array(count);
      this.readExact(new Uint8Array(out.buffer), info.offset, name);
      return out;
    }
    if (info.type === GGML_F16) {
      const half = new Uint16Array(count);
      this.readExact(new Uint8Array(half.buffer), info.offset, name);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(half[i] as number);
      return out;
    }
    throw new GgufFormatError(
      `${this.path}: tensor ${name} is ggml type ${info.type}; only F32/F16 files can be served in FP32`,
    );
  }

  close(): void {
    closeSync(this.fd);
  }

  private readExact(into: Uint8Array, offset: number, name: string): void {
    const n = readSync(this.fd, into, 0, into.length, offset);
    if (n !== into.length) throw new GgufFormatError(`${this.path}: truncated in tensor ${name}`);
  }

  private readHeader(): { metadata: Map<string, GgufValue>; tensors: Map<string, GgufTensorInfo> } {
    const size = fstatSync(this.fd).size;
    const load = (need: number): Buffer => {
      // Vocabularies make headers of a few hundred KiB: read in doubling chunks.
      const len = Math.min(size, Math.max(need, 1 << 20, 2 * need));
      if (need > len) throw new GgufFormatError(`${this.path}: GGUF header truncated`);
      const buf = Buffer.alloc(len);
      readSync(this.fd, buf, 0, len, 0);
      return buf;
    };
    const c = new Cursor(load(24), load);
    if (c.u32() !== MAGIC) throw new GgufFormatError(`${this.path}: not a GGUF file`);
    const version = c.u32();
    if (version !== 2 && version !== 3) throw new GgufFormatError(`${this.path}: GGUF version ${version}`);
    const tensorCount = c.u64();
    const kvCount = c.u64();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.string();
      metadata.set(key, c.value(c.u32()));
    }
    const raw: { name: string; dims: number[]; type: number; offset: number }[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string();
      const nDims = c.u32();
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(c.u64());
      raw.push({ name, dims, type: c.u32(), offset: c.u64() });
    }
    const alignment = Number(metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT);
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of raw) {
      tensors.set(t.name, {
        name: t.name,
        shape: [...t.dims].reverse(),
        type: t.type,
        offset: dataStart + t.offset,
      });
    }
    return { metadata, tensors };
  }
}

/** IEEE 754 half → float (exact: every half is a float). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
