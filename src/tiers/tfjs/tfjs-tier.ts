/**
 * The TensorFlow tier: the family's LLaMA in TensorFlow.js ops on the wasm (XNNPACK) backend,
 * served from a pool of worker threads, each with its own copy of the weights and its own
 * continuous batcher (docs/tf-tier.md). The pool (src/tiers/worker-host/worker-pool.ts) sends
 * new sequences to the least-loaded serving worker; a worker that dies or stalls fails its
 * sequences and is replaced, and the tier is not ready while no worker serves.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { DEFAULT_WORKER_LIVENESS } from '../../config/tiers/worker-liveness.js';
import type { CancelSignal } from '../cancellation.js';
import { TierUnavailableError } from '../errors.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
import type { LivenessOptions } from '../worker-host/liveness.js';
import type { PoolObserver } from '../worker-host/pool-metrics.js';
import type { WorkerFault } from '../worker-host/protocol.js';
import type { WorkerErrors } from '../worker-host/worker-client.js';
import { WorkerPool } from '../worker-host/worker-pool.js';
import { TfjsTierError } from './tfjs-tier-error.js';
import type { WorkerInit, WorkerReady } from './worker-protocol.js';

/** Which weights to serve. */
export interface TfjsModelSource {
  /** An F32 or F16 GGUF of the family. */
  readonly path: string;
  readonly modelId: string;
  /** The variant id reported in info() (the manifest's tensorflow variant). */
  readonly variant: string;
  /** Tokens per sequence (prompt + generated). */
  readonly contextLength: number;
}

export interface TfjsTierOptions {
  readonly name: string;
  /** The model, or a resolver called by start() (so a missing file fails start, not config). */
  readonly model: TfjsModelSource | (() => TfjsModelSource);
  readonly workers: number;
  readonly threads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Sequences allowed to wait beyond workers × maxBatchSize; more are refused (overloaded). */
  readonly maxQueue?: number | undefined;
  /** TierInfo.batchSpeedup (absent: concurrent streams are planned at full speed each). */
  readonly batchSpeedup?: number | undefined;
  /** When a worker counts as stalled (defaults: src/config/tiers/worker-liveness.ts). */
  readonly liveness?: LivenessOptions | undefined;
}

const ERRORS: WorkerErrors = {
  failed: (message) => new TfjsTierError('TG_TFJS_WORKER_FAILED', message),
  stalled: (message) => new TfjsTierError('TG_TFJS_WORKER_STALLED', message),
  closed: () => new TfjsTierError('TG_TFJS_CLOSED', 'the TensorFlow.js tier was closed'),
  badRequest: (message) => new TfjsTierError('TG_TFJS_BAD_REQUEST', message),
  startFailed: (code, message) =>
    new TfjsTierError(code === 'TG_TFJS_MODEL_INVALID' ? code : 'TG_TFJS_WORKER_FAILED', message),
};

export interface TfjsTierDeps {
  readonly logger?: Logger | undefined;
  /** Per-step batch sizes and worker failures (the gateway's metrics, worker-host/pool-metrics.ts). */
  readonly observer?: PoolObserver | undefined;
}

export class TfjsTier implements Tier {
  readonly name: string;
  private readonly pool: WorkerPool<WorkerReady>;
  private model: TfjsModelSource | undefined;
  private loaded: WorkerReady | undefined;
  private state: 'new' | 'starting' | 'ready' | 'failed' | 'closed' = 'new';
  private failure: string | undefined;

  constructor(
    private readonly options: TfjsTierOptions,
    private readonly deps: TfjsTierDeps = {},
  ) {
    this.name = options.name;
    this.pool = new WorkerPool<WorkerReady>({
      name: options.name,
      label: 'tfjs',
      workers: options.workers,
      maxBatchSize: options.maxBatchSize,
      maxQueue: options.maxQueue,
      entry: { from: import.meta.url, name: 'tfjs-worker' },
      liveness: options.liveness ?? DEFAULT_WORKER_LIVENESS,
      // wasm runs as JavaScript: terminating a worker inside a forward is safe (docs/tf-tier.md).
      terminableInRun: true,
      errors: ERRORS,
      logger: deps.logger,
      observer: deps.observer,
    });
  }

  async start(): Promise<void> {
    this.state = 'starting';
    try {
      const model = typeof this.options.model === 'function' ? this.options.model() : this.options.model;
      if (!existsSync(model.path)) {
        throw new TfjsTierError(
          'TG_TFJS_MODEL_MISSING',
          `tier ${this.name}: model file not found: ${model.path}`,
        );
      }
      this.model = model;
      const init: WorkerInit = {
        modelPath: model.path,
        threads: this.options.threads,
        maxBatchSize: this.options.maxBatchSize,
        maxQueueDelayMs: this.options.maxQueueDelayMs,
        contextLength: model.contextLength,
      };
      const ready = await this.pool.start(init);
      this.loaded = ready[0];
      this.state = 'ready';
      if (this.loaded !== undefined) this.warnThreads(this.loaded);
      this.deps.logger?.info(
        { tier: this.name, model: model.path, shape: this.loaded?.shape },
        'tfjs tier ready',
      );
    } catch (err) {
      this.state = 'failed';
      this.failure = err instanceof Error ? err.message : String(err);
      throw err;
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    signal.throwIfAborted();
    this.ready();
    // The prompt needs room for at least one generated token.
    this.validate(request.tokens, (this.model?.contextLength ?? 0) - 1);
    yield* this.pool.stream(request, signal);
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    signal?.throwIfAborted();
    this.ready();
    this.validate(tokens, this.model?.contextLength ?? 0);
    return this.pool.score(tokens, signal);
  }

  info(): TierInfo {
    return {
      name: this.name,
      framework: 'tensorflow',
      modelId: this.model?.modelId ?? 'unknown',
      variant: this.model?.variant ?? 'unknown',
      precision: 'fp32',
      contextLength: this.model?.contextLength ?? 0,
      vocabSize: this.loaded?.shape.vocabSize ?? 0,
      capacity: this.options.workers * this.options.maxBatchSize,
      maxQueue: this.options.maxQueue,
      batchSpeedup: this.options.batchSpeedup,
    };
  }

  health(): TierHealth {
    if (this.state !== 'ready') return { ready: false, detail: this.failure ?? this.state };
    const health = this.pool.health();
    if (!health.ready) return health;
    return { ready: true, detail: `${health.detail}, wasm ${this.loaded?.threads ?? 1} thread(s)` };
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

  async close(): Promise<void> {
    this.state = 'closed';
    await this.pool.close();
  }

  private ready(): void {
    if (this.state !== 'ready') {
      throw new TierUnavailableError(
        this.name,
        `tier "${this.name}" is not ready (${this.failure ?? this.state})`,
      );
    }
  }

  private validate(tokens: readonly number[], maxLength: number): void {
    if (tokens.length === 0) throw new TfjsTierError('TG_TFJS_BAD_REQUEST', 'no prompt tokens');
    if (tokens.length > maxLength) {
      throw new TfjsTierError(
        'TG_TFJS_BAD_REQUEST',
        `${tokens.length} tokens do not fit the context of ${this.model?.contextLength ?? 0}`,
      );
    }
    const vocab = this.loaded?.shape.vocabSize ?? 0;
    if (tokens.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
      throw new TfjsTierError('TG_TFJS_BAD_REQUEST', `token ids must be integers in [0, ${vocab})`);
    }
  }

  private warnThreads(ready: WorkerReady): void {
    if (ready.threads < this.options.threads) {
      this.deps.logger?.warn(
        { tier: this.name, asked: this.options.threads, threads: ready.threads },
        'the tfjs wasm backend runs fewer threads than configured (its threaded build is off in Node; docs/tf-tier.md)',
      );
    }
  }
}
