/**
 * The main tier: an ONNX decoder served by onnxruntime-node from a pool of worker threads, each
 * with its own session and continuous batcher. New sequences go to the least-loaded live worker.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
import type { DecoderSpec } from './decoder-spec.js';
import { TierOverloadedError, TierUnavailableError } from '../errors.js';
import { OnnxTierError } from './onnx-tier-error.js';
import { WorkerClient } from './worker-client.js';
import type { WorkerInit } from './worker-protocol.js';
import { type CancelSignal } from '../cancellation.js';

/** Which decoder to serve. */
export interface OnnxModelSource {
  /** Path of the .onnx decoder. */
  readonly path: string;
  /** Model family id and variant id, for info(). */
  readonly modelId: string;
  readonly variant: string;
  readonly precision: string;
  /** Longest sequence (prompt + generated) the model supports. */
  readonly contextLength: number;
  /** Vocabulary size when the model's logits output does not state it statically. */
  readonly vocabSize?: number | undefined;
}

/** First restart of a crashed worker after this long; doubling up to the maximum on failures. */
const RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

export interface OnnxTierOptions {
  readonly name: string;
  /** The model, or a resolver called by start() (so a missing file fails start, not config). */
  readonly model: OnnxModelSource | (() => OnnxModelSource);
  readonly workers: number;
  readonly intraOpThreads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Sequences allowed to wait beyond workers × maxBatchSize; more are refused (overloaded). */
  readonly maxQueue?: number | undefined;
}

/** Where the tier reports per-step batch sizes (the gateway's MetricsService adapts to it). */
export interface BatchSizeObserver {
  observeBatchSize(tier: string, size: number): void;
}

export interface OnnxTierDeps {
  readonly logger?: Logger | undefined;
  readonly batchSizes?: BatchSizeObserver | undefined;
}

export class OnnxTier implements Tier {
  readonly name: string;
  private readonly options: OnnxTierOptions;
  private readonly deps: OnnxTierDeps;
  private workers: WorkerClient[] = [];
  private model: OnnxModelSource | undefined;
  private spec: DecoderSpec | undefined;
  private state: 'new' | 'starting' | 'ready' | 'failed' | 'closed' = 'new';
  private failure: string | undefined;
  private readonly restarts = new Set<NodeJS.Timeout>();

  constructor(options: OnnxTierOptions, deps: OnnxTierDeps = {}) {
    this.name = options.name;
    this.options = options;
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.state = 'starting';
    let model: OnnxModelSource;
    try {
      model = typeof this.options.model === 'function' ? this.options.model() : this.options.model;
      if (!existsSync(model.path)) {
        throw new OnnxTierError(
          'TG_ONNX_MODEL_MISSING',
          `tier ${this.name}: model file not found: ${model.path}`,
        );
      }
    } catch (err) {
      this.state = 'failed';
      this.failure = err instanceof Error ? err.message : String(err);
      throw err;
    }
    this.model = model;
    const modelPath = model.path;
    const init = {
      modelPath,
      intraOpThreads: this.options.intraOpThreads,
      maxBatchSize: this.options.maxBatchSize,
      maxQueueDelayMs: this.options.maxQueueDelayMs,
      contextLength: model.contextLength,
    };
    this.workers = Array.from({ length: this.options.workers }, (_, index) => this.makeWorker(index, init));
    try {
      const specs = await Promise.all(this.workers.map((w) => w.start()));
      this.spec = specs[0];
      this.state = 'ready';
      this.deps.logger?.info({ tier: this.name, model: modelPath, spec: this.spec }, 'onnx tier ready');
    } catch (err) {
      this.state = 'failed';
      this.failure = err instanceof Error ? err.message : String(err);
      await Promise.all(this.workers.map((w) => w.close()));
      throw err;
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    signal.throwIfAborted();
    const model = this.ready();
    // The prompt needs room for at least one generated token.
    this.validate(request.tokens, model.contextLength - 1, model);
    const worker = this.pickWorker();
    this.admit();
    const { id, channel } = worker.generate({
      tokens: request.tokens,
      sampling: request.sampling,
      maxTokens: request.maxTokens,
      stopTokens: request.stopTokens,
      topLogprobs: request.topLogprobs,
    });
    const onAbort = (): void => {
      worker.cancel(id);
      channel.fail(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const event = await channel.next();
        if (event === undefined) return;
        yield event;
        if (event.kind === 'finish') return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A consumer that stops iterating early (break, return) must free the batch slot too.
      worker.cancel(id);
    }
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    signal?.throwIfAborted();
    const model = this.ready();
    this.validate(tokens, model.contextLength, model);
    const result = this.pickWorker().score(tokens);
    if (!signal) return result;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      result.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  info(): TierInfo {
    return {
      name: this.name,
      framework: 'onnxruntime',
      modelId: this.model?.modelId ?? 'unknown',
      variant: this.model?.variant ?? 'unknown',
      precision: this.model?.precision ?? 'unknown',
      contextLength: this.model?.contextLength ?? 0,
      vocabSize: this.spec?.vocabSize ?? this.model?.vocabSize ?? 0,
      capacity: this.options.workers * this.options.maxBatchSize,
      maxQueue: this.options.maxQueue,
    };
  }

  health(): TierHealth {
    if (this.state !== 'ready') return { ready: false, detail: this.failure ?? this.state };
    const alive = this.workers.filter((w) => w.alive).length;
    if (alive === 0) return { ready: false, detail: 'all inference workers died' };
    return { ready: true, detail: `${alive}/${this.workers.length} workers` };
  }

  /** The decoder's shape as read from the model (after start). */
  decoderSpec(): DecoderSpec | undefined {
    return this.spec;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.close()));
  }

  private ready(): OnnxModelSource {
    if (this.state !== 'ready' || this.model === undefined) {
      throw new TierUnavailableError(
        this.name,
        `tier "${this.name}" is not ready (${this.failure ?? this.state})`,
      );
    }
    return this.model;
  }

  private validate(tokens: readonly number[], maxLength: number, model: OnnxModelSource): void {
    if (tokens.length === 0) throw new OnnxTierError('TG_ONNX_BAD_REQUEST', 'no prompt tokens');
    if (tokens.length > maxLength) {
      throw new OnnxTierError(
        'TG_ONNX_BAD_REQUEST',
        `${tokens.length} tokens do not fit the context of ${model.contextLength}`,
      );
    }
    const vocab = this.spec?.vocabSize ?? model.vocabSize;
    if (vocab !== undefined && tokens.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
      throw new OnnxTierError('TG_ONNX_BAD_REQUEST', `token ids must be integers in [0, ${vocab})`);
    }
  }

  private makeWorker(index: number, init: WorkerInit): WorkerClient {
    return new WorkerClient(init, {
      onBatch: (size) => this.deps.batchSizes?.observeBatchSize(this.name, size),
      onCrash: (err) => {
        // Its sequences have already failed (the gateway may retry them on another tier);
        // the slot is refilled with a fresh worker so the tier recovers its capacity.
        this.deps.logger?.error(
          { tier: this.name, worker: index, err },
          'onnx inference worker died; restarting',
        );
        this.scheduleRestart(index, init, RESTART_DELAY_MS);
      },
    });
  }

  /** Replaces worker `index` after `delayMs`, retrying with doubling delays while start fails. */
  private scheduleRestart(index: number, init: WorkerInit, delayMs: number): void {
    if (this.state !== 'ready') return;
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (this.state !== 'ready') return;
      const worker = this.makeWorker(index, init);
      worker.start().then(
        async () => {
          if (this.state !== 'ready') return worker.close();
          this.workers[index] = worker;
          this.deps.logger?.info({ tier: this.name, worker: index }, 'onnx inference worker restarted');
        },
        async (err: unknown) => {
          this.deps.logger?.error(
            { tier: this.name, worker: index, err },
            'onnx inference worker restart failed',
          );
          await worker.close();
          this.scheduleRestart(index, init, Math.min(delayMs * 2, MAX_RESTART_DELAY_MS));
        },
      );
    }, delayMs);
    timer.unref();
    this.restarts.add(timer);
  }

  /** Sheds load early (429 + Retry-After upstream) rather than queueing without bound. */
  private admit(): void {
    const { maxQueue, maxBatchSize } = this.options;
    if (maxQueue === undefined) return;
    const assigned = this.workers.reduce((n, w) => n + w.load, 0);
    if (assigned >= this.workers.length * maxBatchSize + maxQueue) throw new TierOverloadedError(this.name);
  }

  private pickWorker(): WorkerClient {
    let best: WorkerClient | undefined;
    for (const w of this.workers) if (w.alive && (best === undefined || w.load < best.load)) best = w;
    if (!best) throw new TierUnavailableError(this.name, `tier "${this.name}": no inference worker is alive`);
    return best;
  }
}
