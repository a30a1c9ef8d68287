/**
 * The TensorFlow tier: the family's LLaMA in TensorFlow.js ops on the wasm (XNNPACK) backend,
 * served from a pool of worker threads, each with its own copy of the weights and its own
 * continuous batcher (docs/tf-tier.md). New sequences go to the least-loaded live worker; a
 * worker that dies fails its sequences and is replaced, and the tier is not ready while no worker
 * is alive.
 */
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { CancelSignal } from '../cancellation.js';
import { TierOverloadedError, TierUnavailableError } from '../errors.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
import { TfjsTierError } from './tfjs-tier-error.js';
import { WorkerClient } from './worker-client.js';
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

/** First restart of a crashed worker after this long; doubling up to the maximum on failures. */
const RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;

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
}

export interface TfjsTierDeps {
  readonly logger?: Logger | undefined;
  /** Per-step batch sizes (the gateway's batch-size histogram). */
  readonly onBatch?: ((tier: string, size: number) => void) | undefined;
}

export class TfjsTier implements Tier {
  readonly name: string;
  private workers: WorkerClient[] = [];
  private model: TfjsModelSource | undefined;
  private loaded: WorkerReady | undefined;
  private init: WorkerInit | undefined;
  private state: 'new' | 'starting' | 'ready' | 'failed' | 'closed' = 'new';
  private failure: string | undefined;
  private readonly restarts = new Set<NodeJS.Timeout>();

  constructor(
    private readonly options: TfjsTierOptions,
    private readonly deps: TfjsTierDeps = {},
  ) {
    this.name = options.name;
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
      this.init = {
        modelPath: model.path,
        threads: this.options.threads,
        maxBatchSize: this.options.maxBatchSize,
        maxQueueDelayMs: this.options.maxQueueDelayMs,
        contextLength: model.contextLength,
      };
      const init = this.init;
      this.workers = Array.from({ length: this.options.workers }, (_, i) => this.makeWorker(i, init));
      const ready = await Promise.all(this.workers.map((w) => w.start()));
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
      await Promise.all(this.workers.map((w) => w.close()));
      throw err;
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    signal.throwIfAborted();
    this.ready();
    // The prompt needs room for at least one generated token.
    this.validate(request.tokens, (this.model?.contextLength ?? 0) - 1);
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
    this.ready();
    this.validate(tokens, this.model?.contextLength ?? 0);
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
    const alive = this.workers.filter((w) => w.alive).length;
    if (alive === 0) return { ready: false, detail: 'all inference workers died' };
    return {
      ready: true,
      detail: `${alive}/${this.workers.length} workers, wasm ${this.loaded?.threads ?? 1} thread(s)`,
    };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.close()));
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

  private makeWorker(index: number, init: WorkerInit): WorkerClient {
    return new WorkerClient(init, {
      onBatch: (size) => this.deps.onBatch?.(this.name, size),
      onCrash: (err) => {
        // Its sequences have already failed (the gateway may retry them on another tier);
        // the slot is refilled with a fresh worker so the tier recovers its capacity.
        this.deps.logger?.error(
          { tier: this.name, worker: index, err },
          'tfjs inference worker died; restarting',
        );
        this.scheduleRestart(index, RESTART_DELAY_MS);
      },
    });
  }

  /** Replaces worker `index` after `delayMs`, retrying with doubling delays while start fails. */
  private scheduleRestart(index: number, delayMs: number): void {
    const init = this.init;
    if (this.state !== 'ready' || init === undefined) return;
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (this.state !== 'ready') return;
      const worker = this.makeWorker(index, init);
      worker.start().then(
        async () => {
          if (this.state !== 'ready') return worker.close();
          this.workers[index] = worker;
          this.deps.logger?.info({ tier: this.name, worker: index }, 'tfjs inference worker restarted');
        },
        async (err: unknown) => {
          this.deps.logger?.error(
            { tier: this.name, worker: index, err },
            'tfjs inference worker restart failed',
          );
          await worker.close();
          this.scheduleRestart(index, Math.min(delayMs * 2, MAX_RESTART_DELAY_MS));
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
