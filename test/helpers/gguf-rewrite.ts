import { readFile, writeFile } from 'node:fs/promises';

// GGUF v2/v3 (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): little-endian header,
// metadata key/values, tensor infos, zero padding to `general.alignment`, tensor data.
const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const TYPE_STRING = 8;
const TYPE_ARRAY = 9;
/** Byte width of each fixed-size value type (strings and arrays are variable). */
const FIXED_SIZE: Readonly<Record<number, number>> = {
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

/** Where the parts of a GGUF file lie, as byte ranges of the file. */
export interface GgufLayout {
  readonly version: number;
  readonly tensorCount: number;
  readonly alignment: number;
  /** Every metadata entry by key: its type and the byte range of the whole entry (key included). */
  readonly entries: ReadonlyMap<
    string,
    { readonly type: number; readonly start: number; readonly end: number }
  >;
  /** String-valued metadata by key. */
  readonly strings: ReadonlyMap<string, string>;
  /** [start, end) of the tensor-info block. */
  readonly tensorInfos: readonly [number, number];
  /** Offset of the tensor data section (the end of the header, padded to the alignment). */
  readonly dataOffset: number;
}

class Reader {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    pos = 0,
  ) {
    this.pos = pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`GGUF truncated at byte ${this.pos}`);
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
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF count too large at byte ${this.pos - 8}`);
    return Number(v);
  }
  string(): string {
    const len = this.u64();
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** Reads an unsigned/signed integer value of the given type (for general.alignment). */
  integer(type: number): number {
    const at = this.pos;
    this.skip(FIXED_SIZE[type] ?? 0);
    switch (type) {
      case 0:
        return this.buf.readUInt8(at);
      case 2:
        return this.buf.readUInt16LE(at);
      case 4:
        return this.buf.readUInt32LE(at);
      case 5:
        return this.buf.readInt32LE(at);
      case 10:
        return Number(this.buf.readBigUInt64LE(at));
      default:
        throw new Error(`GGUF general.alignment has non-integer type ${type}`);
    }
  }
  /** Skips one value of `type`; arrays may nest. */
  skipValue(type: number): void {
    if (type === TYPE_STRING) {
      this.skip(this.u64());
    } else if (type === TYPE_ARRAY) {
      const elemType = this.u32();
      const count = this.u64();
      const width = FIXED_SIZE[elemType];
      if (width !== undefined) this.skip(width * count);
      else for (let i = 0; i < count; i++) this.skipValue(elemType);
    } else {
      const width = FIXED_SIZE[type];
      if (width === undefined) throw new Error(`GGUF unknown value type ${type} at byte ${this.pos}`);
      this.skip(width);
    }
  }
}

/** Parses the header of a GGUF file held in memory (tensor data is not read). */
export function parseGgufLayout(buf: Buffer): GgufLayout {
  const r = new Reader(buf);
  if (r.u32() !== MAGIC) throw new Error('not a GGUF file (bad magic)');
  const version = r.u32();
  // Version 1 used 32-bit lengths and counts; nothing here writes or reads it.
  if (version < 2 || version > 3) throw new Error(`unsupported GGUF version ${version}`);
  const tensorCount = r.u64();
  const kvCount = r.u64();
  const entries = new Map<string, { type: number; start: number; end: number }>();
  const strings = new Map<string, string>();
  let alignment = DEFAULT_ALIGNMENT;
  for (let i = 0; i < kvCount; i++) {
    const start = r.pos;
    const key = r.string();
    const type = r.u32();
    if (type === TYPE_STRING) {
      strings.set(key, r.string());
    } else if (key === 'general.alignment') {
      alignment = r.integer(type);
    } else {
      r.skipValue(type);
    }
    entries.set(key, { type, start, end: r.pos });
  }
  if (!(alignment > 0 && Number.isInteger(alignment))) throw new Error(`bad GGUF alignment ${alignment}`);
  const infoStart = r.pos;
  for (let i = 0; i < tensorCount; i++) {
    r.string(); // name
    const nDims = r.u32();
    r.skip(8 * nDims + 4); // dims, ggml type
    const offset = r.u64();
    // Offsets are relative to the data section and must respect the alignment.
    if (offset % alignment !== 0) throw new Error(`GGUF tensor ${i} offset ${offset} is not aligned`);
  }
  const infoEnd = r.pos;
  const dataOffset = alignUp(infoEnd, alignment);
  if (dataOffset > buf.length) throw new Error('GGUF truncated before the tensor data');
  return {
    version,
    tensorCount,
    alignment,
    entries,
    strings,
    tensorInfos: [infoStart, infoEnd],
    dataOffset,
  };
}

/**
 * Copies the GGUF file `src` to `dest` with the string metadata in `changes` replaced (keys kept
 * in place) or added (at the end). Tensor infos and tensor data are copied byte for byte; only the
 * padding before the data section is recomputed, since tensor offsets are relative to that section.
 */
export async function rewriteGgufMetadata(
  src: string,
  dest: string,
  changes: Record<string, string>,
): Promise<void> {
  const buf = await readFile(src);
  const layout = parseGgufLayout(buf);
  const pending = new Map(Object.entries(changes));
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(layout.version, 4);
  header.writeBigUInt64LE(BigInt(layout.tensorCount), 8);
  let kvCount = layout.entries.size;
  for (const key of pending.keys()) if (!layout.entries.has(key)) kvCount++;
  header.writeBigUInt64LE(BigInt(kvCount), 16);
  parts.push(header);
  // Map iteration follows insertion order, i.e. the file's order.
  for (const [key, entry] of layout.entries) {
    const value = pending.get(key);
    if (value === undefined) {
      parts.push(buf.subarray(entry.start, entry.end));
      continue;
    }
    // Changing a value's type would silently change its meaning for readers.
    if (entry.type !== TYPE_STRING) throw new Error(`GGUF key ${key} is not a string (type ${entry.type})`);
    parts.push(stringEntry(key, value));
    pending.delete(key);
  }
  for (const [key, value] of pending) parts.push(stringEntry(key, value));
  parts.push(buf.subarray(layout.tensorInfos[0], layout.tensorInfos[1]));
  const headerLength = parts.reduce((n, p) => n + p.length, 0);
  parts.push(Buffer.alloc(alignUp(headerLength, layout.alignment) - headerLength));
  parts.push(buf.subarray(layout.dataOffset));
  await writeFile(dest, Buffer.concat(parts));
}

function stringEntry(key: string, value: string): Buffer {
  const k = Buffer.from(key, 'utf8');
  const v = Buffer.from(value, 'utf8');
  const out = Buffer.alloc(8 + k.length + 4 + 8 + v.length);
  let at = out.writeBigUInt64LE(BigInt(k.length), 0);
  at += k.copy(out, at);
  at = out.writeUInt32LE(TYPE_STRING, at);
  at = out.writeBigUInt64LE(BigInt(v.length), at);
  v.copy(out, at);
  return out;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
