/**
 * Continuous batching decoder; runs inside an inference worker (it calls the blocking
 * session.run()). Between two decoder steps it admits waiting sequences (the prompts that arrive
 * together are prefilled together, left-padded, in one run()), drops finished or cancelled ones,
 * re-packs the KV cache when membership changed, and yields to the worker's event loop so that
 * new requests and cancellations arrive. Each step decodes one token for every active sequence
 * in one run().
 */
import ort from 'onnxruntime-node';
import { argmax, createRng, logSoftmax, sampleToken, type Rng } from '../../text/sampling.js';
import { kvInputName, kvOutputName, type DecoderSpec } from './decoder-spec.js';
import { verifyPosition, type VerifyPosition } from '../../text/speculative-sampling.js';
import type { KeptMessage, KeptCall, KeptReply } from '../worker-host/protocol.js';
import { idTensor, rangeTensor, stepMask } from './feeds.js';
import { KvArena } from './kv-arena.js';
import { KvBatch, type KvShape, type RowRef } from './kv-batch.js';
import type { EngineMessage, SequenceEvent, SequenceRequest } from '../worker-host/protocol.js';
import type { RunGate } from '../worker-host/run-gate.js';

export interface EngineOptions {
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly contextLength: number;
}

interface ActiveSequence {
  readonly request: SequenceRequest;
  readonly rng: Rng;
  readonly stop: ReadonlySet<number>;
  /** The sampled token not yet fed to the model. */
  pending: number;
  generated: number;
}

/**
 * A kept sequence (src/tiers/kept-sequence.ts): its own one-row cache, outside the batch, and
 * the tokens it holds (so a call that appends nothing can re-feed the last one for its logits).
 */
interface KeptState {
  readonly stop: ReadonlySet<number>;
  readonly tokens: number[];
  kv: KvBatch;
}

interface KeptJob {
  readonly id: number;
  readonly call: number;
  readonly request: KeptCall;
}

interface ScoreJob {
  readonly id: number;
  readonly tokens: readonly number[];
}

/**
 * Most padded prompt positions prefilled in one run(): the logits output holds vocab floats for
 * each of them (16 prompts of 1,000 tokens would be half a gigabyte on an 8k vocabulary). A
 * longer prompt still runs, alone.
 */
const PREFILL_TOKENS = 1024;
/** Padding allowed in a prefill group, as a share of its real prompt positions. */
const PREFILL_PADDING = 0.25;
/**
 * Spare cache columns kept after a re-pack for an `append` decoder: its steps write in place
 * until they run out (a re-pack every 32 steps at most), and attention reads them masked, so
 * more would cost attention work on every step.
 */
const APPEND_SPARE = 32;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class DecodeEngine {
  private readonly session: ort.InferenceSession;
  private readonly spec: DecoderSpec;
  private readonly shape: KvShape;
  private readonly options: EngineOptions;
  private readonly gate: RunGate;
  private readonly emit: (message: EngineMessage) => void;
  private readonly waiting: SequenceRequest[] = [];
  private readonly scoreJobs: ScoreJob[] = [];
  private readonly cancelled = new Set<number>();
  private readonly keptSeqs = new Map<number, KeptState>();
  private keptJobs: KeptJob[] = [];
  private active: ActiveSequence[] = [];
  private kv: KvBatch;
  private readonly arena: KvArena;
  /** Spare columns a re-pack leaves: APPEND_SPARE for an `append` decoder, else 0. */
  private readonly spare: number;
  /** Reused logits output of decode steps (rows × vocab floats), when the vocabulary is static. */
  private logitsBuffer = new Float32Array(0);
  private running = false;
  private closed = false;
  private firstWaitingAt = 0;

  constructor(
    session: ort.InferenceSession,
    spec: DecoderSpec,
    options: EngineOptions,
    gate: RunGate,
    emit: (message: EngineMessage) => void,
  ) {
    this.session = session;
    this.gate = gate;
    this.spec = spec;
    this.shape = { layers: spec.layers, kvHeads: spec.kvHeads, headDim: spec.headDim };
    // Without position_ids a model infers positions from its own counters, which left padding
    // would shift: such models decode one sequence at a time.
    this.options = spec.positionIds ? options : { ...options, maxBatchSize: 1 };
    this.emit = emit;
    this.kv = KvBatch.empty(this.shape);
    this.arena = new KvArena(spec.layers * 2);
    this.spare = spec.kvOutputs === 'append' ? APPEND_SPARE : 0;
  }

  submit(request: SequenceRequest): void {
    if (this.waiting.length === 0) this.firstWaitingAt = Date.now();
    this.waiting.push(request);
    this.wake();
  }

  cancel(id: number): void {
    const w = this.waiting.findIndex((r) => r.id === id);
    if (w >= 0) this.waiting.splice(w, 1);
    else this.cancelled.add(id);
    this.wake();
  }

  score(id: number, tokens: readonly number[]): void {
    this.scoreJobs.push({ id, tokens });
    this.wake();
  }

  close(): void {
    this.closed = true;
  }

  /**
   * Kept sequences: each holds one of the batch's slots while open; its calls run as their own
   * run()s between two batch steps (simplest correct scheme: the batch waits for them).
   */
  kept(message: KeptMessage): void {
    switch (message.type) {
      case 'kept-open':
        this.keptSeqs.set(message.id, {
          stop: new Set(message.stopTokens),
          tokens: [],
          kv: KvBatch.empty(this.shape),
        });
        break;
      case 'kept-call':
        this.keptJobs.push({ id: message.id, call: message.call, request: message.request });
        this.wake();
        break;
      case 'kept-close':
        this.keptSeqs.delete(message.id);
        this.keptJobs = this.keptJobs.filter((j) => j.id !== message.id);
        // Its slot may let a waiting sequence in.
        this.wake();
        break;
    }
  }

  private wake(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.loop()
      .catch((err: unknown) => {
        // A failed run() leaves the batch's cache unusable: fail every sequence in it.
        const message = err instanceof Error ? err.message : String(err);
        this.emit({
          type: 'events',
          batchSize: 0,
          events: this.active.map((s) => ({ id: s.request.id, kind: 'error', message })),
        });
        this.active = [];
        this.kv = KvBatch.empty(this.shape);
      })
      .finally(() => {
        this.running = false;
        if (!this.closed && this.hasWork()) this.wake();
      });
  }

  /**
   * Whether the loop can make progress: waiting sequences count only while a slot is free (kept
   * sequences may hold every slot; their close() wakes the loop).
   */
  private hasWork(): boolean {
    const free = this.options.maxBatchSize - this.active.length - this.keptSeqs.size;
    return (
      this.active.length > 0 ||
      this.scoreJobs.length > 0 ||
      this.keptJobs.length > 0 ||
      (this.waiting.length > 0 && free > 0)
    );
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const events: SequenceEvent[] = [];
      this.dropCancelled(events);

      const job = this.scoreJobs.shift();
      if (job) await this.runScore(job);
      // Every kept call queued now: each comes from a different sequence (callers await each).
      for (const kj of this.keptJobs.splice(0)) await this.runKept(kj);

      if (this.active.length === 0 && this.waiting.length > 0) {
        // Let a burst of requests arrive so they start together (Triton's max_queue_delay).
        const wait = this.firstWaitingAt + this.options.maxQueueDelayMs - Date.now();
        if (wait > 0 && this.waiting.length < this.options.maxBatchSize) await sleep(wait);
        this.dropCancelled(events);
      }

      const free = this.options.maxBatchSize - this.active.length - this.keptSeqs.size;
      const admitted = this.waiting.splice(0, Math.max(0, free));
      if (admitted.length > 0) {
        const refs: RowRef[] = this.active.map((_, row) => ({ source: this.kv, row }));
        const joined: ActiveSequence[] = [];
        for (const group of prefillGroups(admitted)) {
          const started = await this.prefill(group, events);
          started.rows.forEach((row) => refs.push({ source: started.kv, row }));
          joined.push(...started.seqs);
        }
        if (joined.length > 0) {
          this.active = [...this.active, ...joined];
          this.kv = KvBatch.pack(this.shape, refs, this.arena, this.kv, this.spare);
        }
        // Prefill results go out before the step so that time to first token is not one step late.
        this.emit({ type: 'events', batchSize: 0, events: events.splice(0) });
      }

      const batchSize = this.active.length;
      if (batchSize > 0) await this.step(events);
      if (events.length > 0 || batchSize > 0) this.emit({ type: 'events', batchSize, events });

      if (!this.hasWork()) return;
      await yieldToEventLoop();
    }
  }

  /** Removes cancelled sequences (re-packing the cache); true when membership changed. */
  private dropCancelled(events: SequenceEvent[]): boolean {
    if (this.cancelled.size === 0) return false;
    const survivors: RowRef[] = [];
    const next: ActiveSequence[] = [];
    this.active.forEach((seq, row) => {
      if (this.cancelled.has(seq.request.id)) {
        events.push({ id: seq.request.id, kind: 'error', message: 'cancelled' });
      } else {
        survivors.push({ source: this.kv, row });
        next.push(seq);
      }
    });
    this.cancelled.clear();
    if (next.length === this.active.length) return false;
    this.active = next;
    this.kv = KvBatch.pack(this.shape, survivors, this.arena, this.kv, this.spare);
    return true;
  }

  private pastFeeds(kv: KvBatch, rows = kv.rows): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    const dims = [rows, this.shape.kvHeads, kv.capacity, this.shape.headDim];
    kv.tensors.forEach((data, t) => {
      feeds[kvInputName(t)] = new ort.Tensor('float32', data, dims);
    });
    return feeds;
  }

  /** The KV outputs of a run: present (past + new) or, for an `append` decoder, the new positions. */
  private kvOutputs(out: ort.InferenceSession.ReturnType): Float32Array[] {
    return Array.from(
      { length: this.shape.layers * 2 },
      (_, t) => (out[kvOutputName(this.spec.kvOutputs, t)] as ort.Tensor).data as Float32Array,
    );
  }

  /**
   * Runs the decoder over `tokens` of one sequence after the unpadded one-row cache `past` (empty
   * for a prompt); returns logits [tokens, vocab] and the cache that now holds the tokens too.
   */
  private async forward(
    tokens: readonly number[],
    past: KvBatch = KvBatch.empty(this.shape),
  ): Promise<{ logits: Float32Array; kv: KvBatch }> {
    const n = tokens.length;
    const p = past.width;
    // An empty past of one row: [1, kv_heads, 0, head_dim]; a zero-length past works
    // (test/tiers/onnx/golden.test.ts runs it).
    const feeds = this.pastFeeds(past, 1);
    feeds['input_ids'] = idTensor(this.spec.inputIdsType, tokens, [1, n]);
    feeds['attention_mask'] = stepMask(this.spec.attentionMaskType, [p], p, past.capacity, n);
    if (this.spec.positionIds) {
      feeds['position_ids'] =
        p === 0
          ? rangeTensor(this.spec.positionIds, n)
          : idTensor(
              this.spec.positionIds,
              Array.from({ length: n }, (_, i) => p + i),
              [1, n],
            );
    }
    const out = await this.gate.run(n === 1 && p > 0 ? 'step' : 'prefill', n, () => this.session.run(feeds));
    const logits = (out['logits'] as ort.Tensor).data as Float32Array;
    const kvOut = this.kvOutputs(out);
    if (this.spec.kvOutputs === 'present' || p === 0)
      return { logits, kv: KvBatch.single(this.shape, kvOut, p + n) };
    const kv =
      past.spare >= n
        ? past
        : KvBatch.pack(this.shape, [{ source: past, row: 0 }], undefined, undefined, Math.max(n, this.spare));
    kv.append(kvOut, n);
    return { logits, kv };
  }

  /** One call on a kept sequence: edit its cache, evaluate, answer (kept-result or kept-error). */
  private async runKept(job: KeptJob): Promise<void> {
    const { id, call, request } = job;
    const seq = this.keptSeqs.get(id);
    if (seq === undefined) return; // closed meanwhile: the main thread expects no answer
    try {
      const result = await this.keptCall(seq, request);
      if (this.keptSeqs.has(id)) this.emit({ type: 'kept-result', id, call, result });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.keptSeqs.has(id)) this.emit({ type: 'kept-error', id, call, message });
    }
  }

  private async keptCall(seq: KeptState, request: KeptCall): Promise<KeptReply> {
    let { keep } = request.edit;
    let append = request.edit.append;
    if (!Number.isInteger(keep) || keep < 0 || keep > seq.tokens.length) {
      throw new Error(`keep ${keep} is not within the ${seq.tokens.length} tokens the sequence holds`);
    }
    if (append.length === 0) {
      // The logits after the last kept token were not kept: evaluate that token again.
      if (keep === 0)
        throw new Error('nothing to evaluate: the sequence holds no tokens and none are appended');
      keep -= 1;
      append = [seq.tokens[keep] as number];
    }
    const fed = request.op === 'verify' ? [...append, ...request.draft] : append;
    const limit = this.options.contextLength;
    if (keep + fed.length > limit) {
      throw new Error(`${keep + fed.length} tokens do not fit the context of ${limit}`);
    }
    this.truncate(seq, keep);
    const logits = await this.extend(seq, fed);
    const vocab = logits.length / fed.length;
    if (request.op === 'verify') {
      const rng = createRng(request.options.seed);
      const positions: VerifyPosition[] = [];
      for (let i = 0; i <= request.draft.length; i++) {
        const row = append.length - 1 + i;
        positions.push(
          verifyPosition(
            logits.subarray(row * vocab, (row + 1) * vocab),
            request.draft[i],
            request.options,
            rng,
          ),
        );
      }
      return { positions, held: seq.tokens.length };
    }
    const tokens: number[] = [];
    let row = logits.subarray(logits.length - vocab);
    while (tokens.length < request.k) {
      const token = argmax(row);
      tokens.push(token);
      // The last drafted token stays unfed: the caller's next edit decides whether it is kept.
      if (seq.stop.has(token) || tokens.length >= request.k || seq.tokens.length + 1 >= limit) break;
      row = await this.extend(seq, [token]);
    }
    return { tokens, held: seq.tokens.length };
  }

  /** Keeps the first `keep` positions of a kept sequence's cache (one copy per head and tensor). */
  private truncate(seq: KeptState, keep: number): void {
    const held = seq.tokens.length;
    if (keep === held) return;
    const { kvHeads, headDim } = this.shape;
    const stride = seq.kv.capacity;
    seq.kv = KvBatch.single(
      this.shape,
      seq.kv.tensors.map((src) => {
        const dst = new Float32Array(kvHeads * keep * headDim);
        for (let h = 0; h < kvHeads; h++) {
          dst.set(src.subarray(h * stride * headDim, (h * stride + keep) * headDim), h * keep * headDim);
        }
        return dst;
      }),
      keep,
    );
    seq.tokens.length = keep;
  }

  /** Feeds `tokens` to a kept sequence; returns their logits [tokens, vocab]. */
  private async extend(seq: KeptState, tokens: readonly number[]): Promise<Float32Array> {
    const { logits, kv } = await this.forward(tokens, seq.kv);
    seq.kv = kv;
    seq.tokens.push(...tokens);
    return logits;
  }

  /**
   * Prefills `requests` in one run(), left-padded to the longest prompt (as the batch's cache
   * is: attention_mask masks the pad columns, position_ids start each row at 0), and samples each
   * one's first token. Returns the sequences that continue, with their rows in `kv`.
   */
  private async prefill(
    requests: readonly SequenceRequest[],
    events: SequenceEvent[],
  ): Promise<{ seqs: ActiveSequence[]; rows: number[]; kv: KvBatch }> {
    const live = requests.filter((r) => {
      if (r.maxTokens > 0) return true;
      events.push({ id: r.id, kind: 'finish', reason: 'length' });
      return false;
    });
    const lengths = live.map((r) => r.tokens.length);
    const width = lengths.reduce((a, b) => Math.max(a, b), 0);
    const n = live.length;
    if (n === 0) return { seqs: [], rows: [], kv: KvBatch.empty(this.shape) };
    const ids = new Array<number>(n * width).fill(0);
    const mask = new Uint8Array(n * width);
    const positions = new Array<number>(n * width).fill(0);
    live.forEach((r, row) => {
      const pad = width - r.tokens.length;
      r.tokens.forEach((t, i) => {
        ids[row * width + pad + i] = t;
        mask[row * width + pad + i] = 1;
        positions[row * width + pad + i] = i;
      });
    });
    const feeds = this.pastFeeds(KvBatch.empty(this.shape), n);
    feeds['input_ids'] = idTensor(this.spec.inputIdsType, ids, [n, width]);
    feeds['attention_mask'] = idTensor(this.spec.attentionMaskType, mask, [n, width]);
    if (this.spec.positionIds) feeds['position_ids'] = idTensor(this.spec.positionIds, positions, [n, width]);
    const out = await this.gate.run('prefill', n * width, () => this.session.run(feeds));
    const logits = (out['logits'] as ort.Tensor).data as Float32Array;
    const vocab = logits.length / (n * width);
    // From an empty past, an `append` decoder's new positions are the whole cache, as present is.
    const kv = KvBatch.padded(this.shape, this.kvOutputs(out), width, lengths);
    const seqs: ActiveSequence[] = [];
    const rows: number[] = [];
    live.forEach((request, row) => {
      const seq: ActiveSequence = {
        request,
        rng: createRng(request.sampling.seed),
        stop: new Set(request.stopTokens),
        pending: 0,
        generated: 0,
      };
      const last = (row * width + width - 1) * vocab;
      if (this.accept(seq, logits.subarray(last, last + vocab), request.tokens.length, events)) {
        seqs.push(seq);
        rows.push(row);
      }
    });
    return { seqs, rows, kv };
  }

  /**
   * Samples the next token of `seq` from its logits row; emits it and, when the sequence ends,
   * its finish. Returns whether the sequence continues. `cached` is the sequence's KV length.
   */
  private accept(
    seq: ActiveSequence,
    logits: Float32Array,
    cached: number,
    events: SequenceEvent[],
  ): boolean {
    const { id, sampling, topLogprobs, maxTokens } = seq.request;
    // Greedy without logprobs needs no softmax: on an 8k vocabulary that is ~0.15 ms per row
    // and step here, a tenth of a 16-row step (docs/main-tier.md "Against the targets").
    const s =
      seq.request.logprobs === false && topLogprobs === 0 && !(sampling.temperature > 0)
        ? { token: argmax(logits), logprob: Number.NaN, top: undefined }
        : sampleToken(logits, sampling, seq.rng, topLogprobs);
    if (seq.stop.has(s.token)) {
      events.push({ id, kind: 'finish', reason: 'stop' });
      return false;
    }
    events.push({ id, kind: 'token', token: s.token, logprob: s.logprob, top: s.top });
    seq.generated++;
    seq.pending = s.token;
    // The pending token needs one more cache slot; the context is full when none is left.
    if (seq.generated >= maxTokens || cached + 1 >= this.options.contextLength) {
      events.push({ id, kind: 'finish', reason: 'length' });
      return false;
    }
    return true;
  }

  private async step(events: SequenceEvent[]): Promise<void> {
    const append = this.spec.kvOutputs === 'append';
    if (append && this.kv.spare === 0) {
      // No column left to write in place: re-pack with spare columns again.
      const all = this.active.map((_, row) => ({ source: this.kv, row }));
      this.kv = KvBatch.pack(this.shape, all, this.arena, this.kv, this.spare);
    }
    const kv = this.kv;
    const rows = kv.rows;
    const feeds = this.pastFeeds(kv);
    feeds['input_ids'] = idTensor(
      this.spec.inputIdsType,
      this.active.map((s) => s.pending),
      [rows, 1],
    );
    feeds['attention_mask'] = stepMask(this.spec.attentionMaskType, kv.lengths, kv.width, kv.capacity);
    if (this.spec.positionIds) feeds['position_ids'] = idTensor(this.spec.positionIds, kv.lengths, [rows, 1]);
    const vocab = this.spec.vocabSize;
    let logitsOut: ort.Tensor | null = null;
    if (vocab !== undefined) {
      // Reused like the KV buffers: a fresh rows × vocab array per step costs page faults.
      if (this.logitsBuffer.length < rows * vocab) this.logitsBuffer = new Float32Array(rows * vocab);
      logitsOut = new ort.Tensor('float32', this.logitsBuffer.subarray(0, rows * vocab), [rows, 1, vocab]);
    }
    const fetches: Record<string, ort.Tensor | null> = { logits: logitsOut };
    // present: ORT writes past + new straight into the arena buffer the past does not occupy.
    // append: the new positions are small; ORT allocates them and they are copied in place.
    const presentDims = [rows, this.shape.kvHeads, kv.width + 1, this.shape.headDim];
    const presentSize = rows * this.shape.kvHeads * (kv.width + 1) * this.shape.headDim;
    const present: Float32Array[] = [];
    for (let t = 0; t < this.shape.layers * 2; t++) {
      const name = kvOutputName(this.spec.kvOutputs, t);
      if (append) {
        fetches[name] = null;
        continue;
      }
      const view = this.arena.take(t, presentSize, kv.tensors[t]);
      present.push(view);
      fetches[name] = new ort.Tensor('float32', view, presentDims);
    }
    const out = await this.gate.run('step', rows, () => this.session.run(feeds, fetches));
    const logits = (out['logits'] as ort.Tensor).data as Float32Array;
    const stride = logits.length / rows;
    if (append) kv.append(this.kvOutputs(out), 1);
    else kv.advance(present);

    const survivors: RowRef[] = [];
    const next: ActiveSequence[] = [];
    this.active.forEach((seq, row) => {
      const keep = this.accept(
        seq,
        logits.subarray(row * stride, (row + 1) * stride),
        kv.lengths[row] as number,
        events,
      );
      if (keep) {
        survivors.push({ source: kv, row });
        next.push(seq);
      }
    });
    if (next.length !== this.active.length) {
      this.active = next;
      this.kv = KvBatch.pack(this.shape, survivors, this.arena, kv, this.spare);
    }
  }

  private async runScore(job: ScoreJob): Promise<void> {
    const { id, tokens } = job;
    try {
      if (tokens.length > this.options.contextLength) {
        throw new Error(
          `cannot score ${tokens.length} tokens: context length is ${this.options.contextLength}`,
        );
      }
      const out = new Float64Array(Math.max(0, tokens.length - 1));
      if (tokens.length >= 2) {
        const { logits } = await this.forward(tokens);
        const vocab = logits.length / tokens.length;
        for (let i = 1; i < tokens.length; i++) {
          const lp = logSoftmax(logits.subarray((i - 1) * vocab, i * vocab));
          out[i - 1] = lp[tokens[i] as number] as number;
        }
      }
      this.emit({ type: 'scored', id, logprobs: out });
    } catch (err) {
      this.emit({ type: 'score-error', id, message: err instanceof Error ? err.message : String(err) });
    }
  }
}

/**
 * Splits admitted requests into prefill groups: similar prompt lengths together (longest first),
 * so that padding stays within PREFILL_PADDING of the real positions and a group within
 * PREFILL_TOKENS padded positions.
 */
export function prefillGroups<T extends { readonly tokens: readonly number[] }>(
  requests: readonly T[],
): T[][] {
  const sorted = [...requests].sort((a, b) => b.tokens.length - a.tokens.length);
  const groups: T[][] = [];
  let group: T[] = [];
  let real = 0;
  for (const r of sorted) {
    const width = group.length > 0 ? (group[0] as T).tokens.length : r.tokens.length;
    const padded = (group.length + 1) * width;
    const fits = padded <= PREFILL_TOKENS && padded <= (1 + PREFILL_PADDING) * (real + r.tokens.length);
    if (group.length > 0 && !fits) {
      groups.push(group);
      group = [];
      real = 0;
    }
    group.push(r);
    real += r.tokens.length;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
