/**
 * Continuous batching decoder on TensorFlow.js; runs inside an inference worker (tfjs on the wasm
 * backend computes synchronously on the thread that calls it). The scheduling is the ONNX tier's
 * (src/tiers/onnx/decode-engine.ts): between two steps it admits waiting sequences (each
 * prefilled alone: exact, no padded prompt rows), drops finished or cancelled ones, re-packs the
 * KV cache when membership changed, and yields to the worker's event loop so that new requests
 * and cancellations arrive. Each step decodes one token for every active sequence in one forward.
 */
import { createRng, logSoftmax, sampleToken, type Rng } from '../../text/sampling.js';
import { KvBatch, type RowRef } from './kv-batch.js';
import { causalBias, disposeKv, forward } from './llama-forward.js';
import type { LlamaWeights } from './llama-weights.js';
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

interface ScoreJob {
  readonly id: number;
  readonly tokens: readonly number[];
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

export class DecodeEngine {
  private readonly waiting: SequenceRequest[] = [];
  private readonly scoreJobs: ScoreJob[] = [];
  private readonly cancelled = new Set<number>();
  private active: ActiveSequence[] = [];
  private kv: KvBatch;
  private readonly rep: number;
  private running = false;
  private closed = false;
  private firstWaitingAt = 0;

  constructor(
    private readonly weights: LlamaWeights,
    private readonly options: EngineOptions,
    /** Marks each forward for the worker's liveness (src/tiers/worker-host/run-gate.ts). */
    private readonly gate: RunGate,
    private readonly emit: (message: EngineMessage) => void,
  ) {
    this.rep = weights.shape.heads / weights.shape.kvHeads;
    this.kv = KvBatch.empty(this.rep);
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
    this.kv.dispose();
  }

  private wake(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.loop()
      .catch((err: unknown) => {
        // A failed forward leaves the batch's cache unusable: fail every sequence in it.
        const message = err instanceof Error ? err.message : String(err);
        this.emit({
          type: 'events',
          batchSize: 0,
          events: this.active.map((s) => ({ id: s.request.id, kind: 'error', message })),
        });
        this.active = [];
        this.kv.dispose();
        this.kv = KvBatch.empty(this.rep);
      })
      .finally(() => {
        this.running = false;
        if (!this.closed && (this.waiting.length > 0 || this.scoreJobs.length > 0)) this.wake();
      });
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const events: SequenceEvent[] = [];
      this.dropCancelled(events);

      const job = this.scoreJobs.shift();
      if (job) this.runScore(job);

      if (this.active.length === 0 && this.waiting.length > 0) {
        // Let a burst of requests arrive so they start together (Triton's max_queue_delay).
        const wait = this.firstWaitingAt + this.options.maxQueueDelayMs - Date.now();
        if (wait > 0 && this.waiting.length < this.options.maxBatchSize) await sleep(wait);
        this.dropCancelled(events);
      }

      const joined: { seq: ActiveSequence; kv: KvBatch }[] = [];
      while (this.waiting.length > 0 && this.active.length + joined.length < this.options.maxBatchSize) {
        const started = this.prefill(this.waiting.shift() as SequenceRequest, events);
        if (started) joined.push(started);
      }
      if (joined.length > 0) {
        const refs: RowRef[] = this.active.map((_, row) => ({ source: this.kv, row }));
        for (const j of joined) refs.push({ source: j.kv, row: 0 });
        this.active = [...this.active, ...joined.map((j) => j.seq)];
        this.repack(refs);
        for (const j of joined) j.kv.dispose();
        // Prefill results go out before the step so that time to first token is not one step late.
        this.emit({ type: 'events', batchSize: 0, events: events.splice(0) });
      }

      const batchSize = this.active.length;
      if (batchSize > 0) this.step(events);
      if (events.length > 0 || batchSize > 0) this.emit({ type: 'events', batchSize, events });

      if (this.active.length === 0 && this.waiting.length === 0 && this.scoreJobs.length === 0) return;
      await yieldToEventLoop();
    }
  }

  /** Replaces the batch's cache by the given rows (their sources stay for the caller). */
  private repack(refs: readonly RowRef[]): void {
    const next = KvBatch.pack(this.weights.shape.layers, this.rep, refs);
    this.kv.dispose();
    this.kv = next;
  }

  private dropCancelled(events: SequenceEvent[]): void {
    if (this.cancelled.size === 0) return;
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
    if (next.length === this.active.length) return;
    this.active = next;
    this.repack(survivors);
  }

  private prefill(
    request: SequenceRequest,
    events: SequenceEvent[],
  ): { seq: ActiveSequence; kv: KvBatch } | undefined {
    const { id, tokens } = request;
    if (request.maxTokens <= 0) {
      events.push({ id, kind: 'finish', reason: 'length' });
      return undefined;
    }
    const n = tokens.length;
    const out = this.prompt(tokens, 'last');
    const seq: ActiveSequence = {
      request,
      rng: createRng(request.sampling.seed),
      stop: new Set(request.stopTokens),
      pending: 0,
      generated: 0,
    };
    if (!this.accept(seq, out.logits, n, events)) {
      disposeKv(out.present);
      return undefined;
    }
    return { seq, kv: KvBatch.single(this.rep, out.present, n) };
  }

  /** One forward over a whole prompt from an empty cache (prefill and scoring). */
  private prompt(tokens: readonly number[], logits: 'last' | 'all'): ReturnType<typeof forward> {
    const n = tokens.length;
    return this.gate.runSync('prefill', n, () =>
      forward(this.weights, {
        ids: Int32Array.from(tokens),
        rows: 1,
        steps: n,
        positions: range(n),
        bias: causalBias(this.weights.shape, n),
        logits,
      }),
    );
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
    const s = sampleToken(logits, sampling, seq.rng, topLogprobs);
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

  private step(events: SequenceEvent[]): void {
    const kv = this.kv;
    const rows = kv.rows;
    const out = this.gate.runSync('step', rows, () =>
      forward(this.weights, {
        ids: Int32Array.from(this.active, (s) => s.pending),
        rows,
        steps: 1,
        positions: Int32Array.from(kv.lengths),
        bias: kv.stepBias(),
        past: kv.tensors,
        logits: 'last',
      }),
    );
    kv.advance(out.present);
    const vocab = out.logits.length / rows;
    const survivors: RowRef[] = [];
    const next: ActiveSequence[] = [];
    this.active.forEach((seq, row) => {
      const logits = out.logits.subarray(row * vocab, (row + 1) * vocab);
      if (this.accept(seq, logits, kv.lengths[row] as number, events)) {
        survivors.push({ source: kv, row });
        next.push(seq);
      }
    });
    if (next.length !== this.active.length) {
      this.active = next;
      this.repack(survivors);
    }
  }

  private runScore(job: ScoreJob): void {
    const { id, tokens } = job;
    try {
      if (tokens.length > this.options.contextLength) {
        throw new Error(
          `cannot score ${tokens.length} tokens: context length is ${this.options.contextLength}`,
        );
      }
      const logprobs = new Float64Array(Math.max(0, tokens.length - 1));
      if (tokens.length >= 2) {
        const n = tokens.length;
        const out = this.prompt(tokens, 'all');
        disposeKv(out.present);
        const vocab = out.logits.length / n;
        for (let i = 1; i < n; i++) {
          const lp = logSoftmax(out.logits.subarray((i - 1) * vocab, i * vocab));
          logprobs[i - 1] = lp[tokens[i] as number] as number;
        }
      }
      this.emit({ type: 'scored', id, logprobs });
    } catch (err) {
      this.emit({ type: 'score-error', id, message: err instanceof Error ? err.message : String(err) });
    }
  }
}
