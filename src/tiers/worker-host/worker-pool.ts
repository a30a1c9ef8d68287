/**
 * A pool of inference workers behind one tier (the ONNX and TensorFlow.js tiers): new sequences go
 * to the least-loaded serving worker; a worker that dies is replaced after a short delay, one that
 * stalls (liveness.ts) is stopped and replaced at once, and the tier is ready while at least one
 * worker serves. Stopping never terminates a worker inside a run (run-gate.ts).
 */
import type { Logger } from 'pino';
import type { CancelSignal } from '../cancellation.js';
import { TierOverloadedError, TierUnavailableError } from '../errors.js';
import type { GenerateRequest, TierEvent, TierHealth } from '../tier.js';
import type { LivenessOptions } from './liveness.js';
import type { PoolObserver } from './pool-metrics.js';
import type { WorkerFault } from './protocol.js';
import type { WorkerEntry } from './spawn.js';
import { WorkerClient, type WorkerErrors } from './worker-client.js';

/** First restart of a crashed worker after this long; doubling up to the maximum on failures. */
const RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * close() waits this long for workers already being stopped; one stuck in native code may never
 * leave its run, and the tier cannot terminate it (run-gate.ts).
 */
const RETIRED_WAIT_MS = 5_000;

export interface WorkerPoolOptions {
  /** The tier's name (logs, errors). */
  readonly name: string;
  /** The framework's short name in log messages ("onnx", "tfjs"). */
  readonly label: string;
  readonly workers: number;
  readonly maxBatchSize: number;
  /** Sequences allowed to wait beyond workers × maxBatchSize; more are refused (overloaded). */
  readonly maxQueue?: number | undefined;
  readonly entry: WorkerEntry;
  readonly liveness: LivenessOptions;
  /**
   * Whether terminating a worker inside a run is safe (a wasm or JavaScript run: V8 interrupts
   * it); not for native runs such as onnxruntime-node's (run-gate.ts).
   */
  readonly terminableInRun?: boolean | undefined;
  readonly errors: WorkerErrors;
  readonly logger?: Logger | undefined;
  /** Batch sizes and worker failures (the gateway's metrics: pool-metrics.ts). */
  readonly observer?: PoolObserver | undefined;
}

export class WorkerPool<R> {
  private readonly options: WorkerPoolOptions;
  private workers: WorkerClient<R>[] = [];
  private init: object | undefined;
  private open = false;
  private readonly restarts = new Set<NodeJS.Timeout>();
  private readonly retiring = new Set<Promise<void>>();
  /** Slots with a replacement scheduled or starting. */
  private readonly pendingSlots = new Set<number>();
  /** Workers started to replace one that died or stalled (tests and the health detail read it). */
  replacements = 0;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
  }

  /** Starts every worker with `init`; resolves with what each reported when ready. */
  async start(init: object): Promise<R[]> {
    this.init = init;
    this.open = true;
    this.workers = Array.from({ length: this.options.workers }, (_, i) => this.makeWorker(i));
    try {
      return await Promise.all(this.workers.map((w) => w.start()));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** One sequence on the least-loaded serving worker; aborting `signal` cancels it. */
  async *stream(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    const worker = this.pick();
    this.admit();
    const { id, channel } = worker.generate({
      tokens: request.tokens,
      sampling: request.sampling,
      maxTokens: request.maxTokens,
      stopTokens: request.stopTokens,
      topLogprobs: request.topLogprobs,
      logprobs: request.logprobs,
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

  /**
   * Opens a kept sequence on the least-loaded serving worker (admitted like a sequence: it holds
   * a batch slot there until closed). The caller talks to that worker through the handle.
   */
  openKept(stopTokens: readonly number[]): { worker: WorkerClient<R>; id: number } {
    const worker = this.pick();
    this.admit();
    return { worker, id: worker.openKept(stopTokens) };
  }

  score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    const result = this.pick().score(tokens);
    if (!signal) return result;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      result.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  health(): TierHealth {
    const serving = this.workers.filter((w) => w.serving).length;
    const replaced = this.replacements > 0 ? `, ${this.replacements} replaced` : '';
    if (serving > 0) return { ready: true, detail: `${serving}/${this.workers.length} workers${replaced}` };
    const why = this.workers.map((w, i) => `worker ${i} ${w.detail}`).join('; ');
    return { ready: false, detail: `no inference worker is serving (${why})` };
  }

  /** Test-only: tells worker `index` to inject `fault` (protocol.ts WorkerFault). */
  injectFault(fault: WorkerFault, index = 0): void {
    this.workers[index]?.inject(fault);
  }

  /** The thread id of worker `index` (tests tell a replacement from the worker it replaced). */
  threadId(index = 0): number | undefined {
    return this.workers[index]?.threadId;
  }

  async close(): Promise<void> {
    this.open = false;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.close()));
    // A timer that holds the process: the retired workers themselves no longer do.
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => (timer = setTimeout(resolve, RETIRED_WAIT_MS)));
    await Promise.race([Promise.all(this.retiring), wait]);
    clearTimeout(timer);
    if (this.retiring.size > 0) {
      this.options.logger?.warn(
        { tier: this.options.name, workers: this.retiring.size },
        `${this.options.label} tier closed with stalled workers still inside a run; they cannot be terminated there`,
      );
    }
  }

  private makeWorker(index: number): WorkerClient<R> {
    const { name, label, entry, liveness, errors, logger } = this.options;
    const worker: WorkerClient<R> = new WorkerClient<R>({
      entry,
      init: this.init ?? {},
      liveness,
      terminableInRun: this.options.terminableInRun,
      errors,
      hooks: {
        onBatch: (size) => this.options.observer?.observeBatchSize?.(name, size),
        onCrash: (err) => {
          this.options.observer?.countWorkerFailure?.(name, 'crash');
          // Its sequences have already failed (the gateway may retry them on another tier);
          // the slot is refilled with a fresh worker so the tier recovers its capacity.
          logger?.error({ tier: name, worker: index, err }, `${label} inference worker died; restarting`);
          this.scheduleRestart(index, RESTART_DELAY_MS);
        },
        onStall: (verdict) => {
          this.options.observer?.countWorkerFailure?.(name, 'stall');
          logger?.error(
            { tier: name, worker: index, reason: verdict.reason, inRun: verdict.inRun },
            `${label} inference worker stalled; replacing it`,
          );
          this.retire(worker, index, verdict.inRun);
          if (this.retiring.size <= this.options.workers) this.scheduleRestart(index, 0);
          else {
            logger?.error(
              { tier: name, worker: index, stuck: this.retiring.size },
              `${label} inference worker not replaced until a stalled one exits: too many are stuck inside runs`,
            );
          }
        },
      },
    });
    return worker;
  }

  /**
   * Keeps track of a stalled worker until its thread has exited (at once unless inside a run).
   * Threads stuck inside native runs cannot be terminated and each holds its memory (and a core,
   * if it spins), so at most `workers` of them may wait at once: beyond that a stalled worker's
   * slot is refilled only when one of them exits, and the tier stays not ready meanwhile.
   */
  private retire(worker: WorkerClient<R>, index: number, inRun: boolean): void {
    const stopped = worker.close().then(() => {
      this.retiring.delete(stopped);
      this.options.logger?.info(
        { tier: this.options.name, worker: index, inRun },
        `stalled ${this.options.label} inference worker exited`,
      );
      this.refillWaitingSlots();
    });
    this.retiring.add(stopped);
  }

  /** Restarts slots whose stalled worker was not replaced (still the one in the slot). */
  private refillWaitingSlots(): void {
    this.workers.forEach((w, i) => {
      if (w.stalled && !this.pendingSlots.has(i)) this.scheduleRestart(i, 0);
    });
  }

  /** Replaces worker `index` after `delayMs`, retrying with doubling delays while start fails. */
  private scheduleRestart(index: number, delayMs: number): void {
    if (!this.open) return;
    this.pendingSlots.add(index);
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (!this.open) return;
      const worker = this.makeWorker(index);
      worker.start().then(
        async () => {
          if (!this.open) return worker.close();
          this.pendingSlots.delete(index);
          this.workers[index] = worker;
          this.replacements++;
          this.options.logger?.info(
            { tier: this.options.name, worker: index },
            `${this.options.label} inference worker replaced`,
          );
        },
        async (err: unknown) => {
          this.options.logger?.error(
            { tier: this.options.name, worker: index, err },
            `${this.options.label} inference worker restart failed`,
          );
          await worker.close();
          this.scheduleRestart(
            index,
            Math.min(Math.max(delayMs, RESTART_DELAY_MS) * 2, MAX_RESTART_DELAY_MS),
          );
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
    if (assigned >= this.workers.length * maxBatchSize + maxQueue)
      throw new TierOverloadedError(this.options.name);
  }

  private pick(): WorkerClient<R> {
    let best: WorkerClient<R> | undefined;
    for (const w of this.workers) if (w.serving && (best === undefined || w.load < best.load)) best = w;
    if (!best) {
      throw new TierUnavailableError(
        this.options.name,
        `tier "${this.options.name}": no inference worker is serving`,
      );
    }
    return best;
  }
}
