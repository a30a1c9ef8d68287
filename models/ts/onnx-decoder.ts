/**
 * Runs a tiergate ONNX decoder (input_ids, attention_mask, position_ids,
 * past_key_values.N.key|value -> logits and either present.N.key|value, the optimum convention,
 * or new_key_values.N.key|value, the new positions only) in onnxruntime-node. With the latter it
 * joins past and new positions itself, so callers always get past + new back.
 * Used by the model build (perplexity), verify, tests and the model benchmark; the gateway's ONNX
 * tier has its own worker-thread runtime.
 */
import * as ort from 'onnxruntime-node';

export interface DecoderStep {
  /** Logits [batch, seq, vocab], row-major. */
  readonly logits: Float32Array;
  readonly batch: number;
  readonly seq: number;
  readonly vocab: number;
  /** Per layer key/value tensors to pass back as the next step's past. */
  readonly presents: readonly ort.Tensor[];
}

/** Explicit masks/positions for padded batches; by default every position is attended. */
export interface StepOptions {
  /** [batch][past + seq], 1 = attend, 0 = padding. */
  readonly attentionMask?: readonly (readonly number[])[];
  /** [batch][seq] absolute positions. */
  readonly positionIds?: readonly (readonly number[])[];
}

export interface DecoderShape {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

export class OnnxDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly shape: DecoderShape,
    /** Whether the model outputs only the new positions (new_key_values.N.*). */
    private readonly appendsOnly: boolean,
  ) {}

  static async load(path: string, threads = 1): Promise<OnnxDecoder> {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
    if (meta === undefined || !meta.isTensor) throw new Error(`${path}: no past_key_values.0.key input`);
    const [, kvHeads, , headDim] = meta.shape;
    if (typeof kvHeads !== 'number' || typeof headDim !== 'number') {
      throw new Error(`${path}: past_key_values.0.key must have static head count and size`);
    }
    const appendsOnly = session.outputNames.includes('new_key_values.0.key');
    return new OnnxDecoder(session, { layers: pastNames.length / 2, kvHeads, headDim }, appendsOnly);
  }

  /** Zero-length past for a first step. */
  emptyPast(batch: number): ort.Tensor[] {
    const { layers, kvHeads, headDim } = this.shape;
    return Array.from(
      { length: layers * 2 },
      () => new ort.Tensor('float32', new Float32Array(0), [batch, kvHeads, 0, headDim]),
    );
  }

  /**
   * One forward pass. `ids` is batch rows of equal length; `past` comes from a previous step
   * (or emptyPast); unless `opts` says otherwise positions continue from the past length and all
   * positions are attended.
   */
  async step(
    ids: readonly (readonly number[])[],
    past?: readonly ort.Tensor[],
    opts: StepOptions = {},
  ): Promise<DecoderStep> {
    const batch = ids.length;
    const seq = ids[0]?.length ?? 0;
    const pastKv = past ?? this.emptyPast(batch);
    const pastLen = pastKv[0]?.dims[2] ?? 0;
    const inputIds = new BigInt64Array(batch * seq);
    const positions = new BigInt64Array(batch * seq);
    ids.forEach((row, b) => {
      if (row.length !== seq) throw new Error('all rows must have the same length');
      row.forEach((tok, t) => {
        inputIds[b * seq + t] = BigInt(tok);
        positions[b * seq + t] = BigInt(opts.positionIds?.[b]?.[t] ?? pastLen + t);
      });
    });
    const mask = new BigInt64Array(batch * (pastLen + seq)).fill(1n);
    opts.attentionMask?.forEach((row, b) =>
      row.forEach((m, j) => (mask[b * (pastLen + seq) + j] = BigInt(m))),
    );
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', inputIds, [batch, seq]),
      attention_mask: new ort.Tensor('int64', mask, [batch, pastLen + seq]),
      position_ids: new ort.Tensor('int64', positions, [batch, seq]),
    };
    for (let i = 0; i < this.shape.layers; i++) {
      feeds[`past_key_values.${i}.key`] = pastKv[2 * i] as ort.Tensor;
      feeds[`past_key_values.${i}.value`] = pastKv[2 * i + 1] as ort.Tensor;
    }
    const out = await this.session.run(feeds);
    const logits = out['logits'];
    if (logits === undefined) throw new Error('model returned no logits');
    const presents: ort.Tensor[] = [];
    const prefix = this.appendsOnly ? 'new_key_values' : 'present';
    for (let i = 0; i < this.shape.layers; i++) {
      const k = out[`${prefix}.${i}.key`];
      const v = out[`${prefix}.${i}.value`];
      if (k === undefined || v === undefined) throw new Error(`model returned no ${prefix}.${i}`);
      presents.push(k, v);
    }
    if (this.appendsOnly && pastLen > 0) {
      return { logits: logits.data as Float32Array, batch, seq, vocab: logits.dims[2] ?? 0, presents: presents.map((t, i) => joinPositions(pastKv[i] as ort.Tensor, t)) };
    }
    const vocab = logits.dims[2] ?? 0;
    return { logits: logits.data as Float32Array, batch, seq, vocab, presents };
  }

  /** Greedy continuation with the KV cache: prompt once, then one token per step. */
  async greedy(prompt: readonly number[], count: number): Promise<number[]> {
    let res = await this.step([prompt]);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const next = argmax(res.logits, (res.seq - 1) * res.vocab, res.vocab);
      out.push(next);
      if (i + 1 < count) res = await this.step([[next]], res.presents);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function argmax(data: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = data[offset + i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Natural-log softmax of logits[offset .. offset+length) evaluated at index `target`. */
export function logSoftmaxAt(data: Float32Array, offset: number, length: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, data[offset + i] as number);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp((data[offset + i] as number) - max);
  return (data[offset + target] as number) - max - Math.log(sum);
}

/** past [b, h, p, d] followed by new [b, h, s, d] along the position axis. */
function joinPositions(past: ort.Tensor, added: ort.Tensor): ort.Tensor {
  const [b = 0, h = 0, p = 0, d = 0] = past.dims;
  const s = added.dims[2] ?? 0;
  const a = past.data as Float32Array;
  const n = added.data as Float32Array;
  const out = new Float32Array(b * h * (p + s) * d);
  for (let bh = 0; bh < b * h; bh++) {
    out.set(a.subarray(bh * p * d, (bh + 1) * p * d), bh * (p + s) * d);
    out.set(n.subarray(bh * s * d, (bh + 1) * s * d), (bh * (p + s) + p) * d);
  }
  return new ort.Tensor('float32', out, [b, h, p + s, d]);
}
