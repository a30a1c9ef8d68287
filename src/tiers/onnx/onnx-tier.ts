/**
 * The main tier: an ONNX decoder served by onnxruntime-node from a pool of worker threads, each
 * with its own session and continuous batcher (src/tiers/worker-host/worker-pool.ts: placement,
 * liveness, replacement). New sequences go to the least-loaded serving worker.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { DEFAULT_WORKER_LIVENESS } from '../../config/tiers/worker-liveness.js';
import type { CancelSignal } from '../cancellation.js';
import { TierUnavailableError } from '../errors.js';
import type { KeptSequence, OpenSequenceOptions, SequenceKeeper } from '../kept-sequence.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
import type { LivenessOptions } from '../worker-host/liveness.js';
import type { PoolObserver } from '../worker-host/pool-metrics.js';
import type { WorkerFault } from '../worker-host/protocol.js';
import type { WorkerErrors } from '../worker-host/worker-client.js';
import { WorkerPool } from '../worker-host/worker-pool.js';
import type { DecoderSpec } from './decoder-spec.js';
import { OnnxKeptSequence } from './onnx-kept-sequence.js';
import { OnnxTierError } from './onnx-tier-error.js';
import type { WorkerInit } from './worker-protocol.js';

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
  /** When a worker counts as stalled (defaults: src/config/tiers/worker-liveness.ts). */
  readonly liveness?: LivenessOptions | undefined;
  /** TierInfo.batchSpeedup (absent: concurrent streams are planned at full speed each). */
  readonly batchSpeedup?: number | undefined;
}

const ERRORS: WorkerErrors = {
  failed: (message) => new OnnxTierError('TG_ONNX_WORKER_FAILED', message),
  stalled: (message) => new OnnxTierError('TG_ONNX_WORKER_STALLED', message),
  closed: () => new OnnxTierError('TG_ONNX_CLOSED', 'the ONNX tier was closed'),
  badRequest: (message) => new OnnxTierError('TG_ONNX_BAD_REQUEST', message),
  startFailed: (code, message) =>
    new OnnxTierError(code === 'TG_ONNX_NOT_A_DECODER' ? code : 'TG_ONNX_WORKER_FAILED', message),
};

export interface OnnxTierDeps {
  readonly logger?: Logger | undefined;
  /** Per-step batch sizes and worker failures (the gateway's metrics, worker-host/pool-metrics.ts). */
  readonly observer?: PoolObserver | undefined;
}

export class OnnxTier implements Tier, SequenceKeeper {
  readonly name: string;
  private readonly options: OnnxTierOptions;
  private readonly deps: OnnxTierDeps;
  private readonly pool: WorkerPool<DecoderSpec>;
  private model: OnnxModelSource | undefined;
  private spec: DecoderSpec | undefined;
  private state: 'new' | 'starting' | 'ready' | 'failed' | 'closed' = 'new';
  private failure: string | undefined;

  constructor(options: OnnxTierOptions, deps: OnnxTierDeps = {}) {
    this.name = options.name;
    this.options = options;
    this.deps = deps;
    this.pool = new WorkerPool<DecoderSpec>({
      name: options.name,
      label: 'onnx',
      workers: options.workers,
      maxBatchSize: options.maxBatchSize,
      maxQueue: options.maxQueue,
      entry: { from: import.meta.url, name: 'onnx-worker' },
      liveness: options.liveness ?? DEFAULT_WORKER_LIVENESS,
      errors: ERRORS,
      logger: deps.logger,
      observer: deps.observer,
    });
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
    const init: WorkerInit = {
      modelPath,
      intraOpThreads: this.options.intraOpThreads,
      maxBatchSize: this.options.maxBatchSize,
      maxQueueDelayMs: this.options.maxQueueDelayMs,
      contextLength: model.contextLength,
    };
    try {
      const specs = await this.pool.start(init);
      this.spec = specs[0];
      this.state = 'ready';
      this.deps.logger?.info({ tier: this.name, model: modelPath, spec: this.spec }, 'onnx tier ready');
    } catch (err) {
      this.state = 'failed';
      this.failure = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    signal.throwIfAborted();
    const model = this.ready();
    // The prompt needs room for at least one generated token.
    this.validate(request.tokens, model.contextLength - 1, model);
    yield* this.pool.stream(request, signal);
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    signal?.throwIfAborted();
    const model = this.ready();
    this.validate(tokens, model.contextLength, model);
    return this.pool.score(tokens, signal);
  }

  /**
   * A sequence whose KV cache stays in one worker between calls (src/tiers/kept-sequence.ts):
   * it holds one of that worker's batch slots until closed or its signal aborts.
   */
  async openSequence(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence> {
    signal.throwIfAborted();
    const model = this.ready();
    const { worker, id } = this.pool.openKept(options.stopTokens);
    const validate = (tokens: readonly number[]): void => {
      if (tokens.length > 0) this.validate(tokens, model.contextLength, model);
    };
    return new OnnxKeptSequence(worker, id, signal, validate);
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
      batchSpeedup:
        this.options.batchSpeedup === undefined
          ? undefined
          : Math.min(this.options.batchSpeedup, this.options.workers * this.options.maxBatchSize),
    };
  }

  health(): TierHealth {
    if (this.state !== 'ready') return { ready: false, detail: this.failure ?? this.state };
    return this.pool.health();
  }

  /** The decoder's shape as read from the model (after start). */
  decoderSpec(): DecoderSpec | undefined {
    return this.spec;
  }

  /**
   * Test-only fault injection into worker `index` (src/tiers/worker-host/protocol.ts WorkerFault):
   * no API route or config key reaches it.
   */
  injectWorkerFault(fault: WorkerFault, index = 0): void {
    this.pool.injectFault(fault, index);
  }

  /** Worker `index`'s thread id and how many workers were replaced (tests). */
  workerStatus(index = 0): { threadId: number | undefined; replacements: number } {
    return { threadId: this.pool.threadId(index), replacements: this.pool.replacements };
  }

  /** Stops every worker, never inside a native run (worker-host/run-gate.ts), and waits for them. */
  async close(): Promise<void> {
    this.state = 'closed';
    await this.pool.close();
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
}
