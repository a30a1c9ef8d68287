/**
 * Main-thread handle on one inference worker: spawns it, routes its per-step event messages to
 * the sequences' channels, and fails every open sequence if the worker dies (the ONNX tier's
 * design, src/tiers/onnx/worker-client.ts, with this tier's protocol and errors).
 */
import { Worker } from 'node:worker_threads';
import { EventChannel } from '../onnx/event-channel.js';
import { tokenEvent, type FinishEvent, type TokenEvent } from '../tier.js';
import { TfjsTierError } from './tfjs-tier-error.js';
import type {
  MainToWorker,
  SequenceRequest,
  WorkerInit,
  WorkerReady,
  WorkerToMain,
} from './worker-protocol.js';

/**
 * Spawns the worker script next to this module. Compiled (dist/) it is a .js file. Under tsx
 * (tests, benchmarks) Node 20 checks a worker entry's extension before any --import hook runs in
 * the new thread, so a small bootstrap registers tsx's loader first (as the ONNX tier does).
 */
function spawnWorker(init: WorkerInit): Worker {
  const here = new URL(import.meta.url);
  if (!here.pathname.endsWith('.ts'))
    return new Worker(new URL('./tfjs-worker.js', here), { workerData: init });
  const entry = new URL('./tfjs-worker.ts', here).href;
  const bootstrap =
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })` +
    `.catch((err) => { throw err; });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

export type SequenceChannel = EventChannel<TokenEvent | FinishEvent>;

export interface WorkerClientHooks {
  /** Called once per decode step with the number of sequences decoded together. */
  onBatch?(size: number): void;
  /** Called when the worker dies unexpectedly (after start). */
  onCrash?(error: Error): void;
}

export class WorkerClient {
  private worker: Worker | undefined;
  private readonly sequences = new Map<number, SequenceChannel>();
  private readonly scores = new Map<number, { resolve(v: Float64Array): void; reject(e: Error): void }>();
  private nextId = 1;
  private closing = false;
  private crashed = false;
  alive = false;

  constructor(
    private readonly init: WorkerInit,
    private readonly hooks: WorkerClientHooks = {},
  ) {}

  /** Sequences and scorings assigned to this worker (running or queued): the pool balances on it. */
  get load(): number {
    return this.sequences.size + this.scores.size;
  }

  start(): Promise<WorkerReady> {
    const worker = spawnWorker(this.init);
    this.worker = worker;
    return new Promise<WorkerReady>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerToMain) => {
        if (message.type === 'ready') {
          ready = true;
          this.alive = true;
          resolve(message.ready);
        } else if (message.type === 'fatal') {
          reject(new TfjsTierError(message.code, message.message));
          void worker.terminate();
        } else {
          this.dispatch(message);
        }
      });
      worker.on('error', (err) => {
        if (!ready)
          reject(new TfjsTierError('TG_TFJS_WORKER_FAILED', `inference worker failed: ${err.message}`));
        else this.die(err);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new TfjsTierError('TG_TFJS_WORKER_FAILED', `inference worker exited (${code})`));
        else if (!this.closing) this.die(new Error(`inference worker exited with code ${code}`));
        this.alive = false;
      });
    });
  }

  generate(request: Omit<SequenceRequest, 'id'>): { id: number; channel: SequenceChannel } {
    const id = this.nextId++;
    const channel: SequenceChannel = new EventChannel();
    this.sequences.set(id, channel);
    this.send({ type: 'generate', request: { ...request, id } });
    return { id, channel };
  }

  /** Stops a sequence between steps; its channel gets no further events. */
  cancel(id: number): void {
    if (this.sequences.delete(id)) this.send({ type: 'cancel', id });
  }

  score(tokens: readonly number[]): Promise<Float64Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.scores.set(id, { resolve, reject });
      this.send({ type: 'score', id, tokens });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.failAll(new TfjsTierError('TG_TFJS_CLOSED', 'the TensorFlow.js tier was closed'));
    if (this.worker) await this.worker.terminate();
    this.alive = false;
  }

  private send(message: MainToWorker): void {
    if (!this.worker || !this.alive) {
      this.failAll(new TfjsTierError('TG_TFJS_WORKER_FAILED', 'inference worker is not running'));
      return;
    }
    this.worker.postMessage(message);
  }

  private dispatch(message: WorkerToMain): void {
    if (message.type === 'events') {
      if (message.batchSize > 0) this.hooks.onBatch?.(message.batchSize);
      for (const e of message.events) {
        const channel = this.sequences.get(e.id);
        if (!channel) continue; // cancelled on this side already
        if (e.kind === 'token') {
          channel.push(tokenEvent(e.token, e.logprob, e.top));
        } else if (e.kind === 'finish') {
          channel.push({ kind: 'finish', reason: e.reason });
          channel.end();
          this.sequences.delete(e.id);
        } else {
          channel.fail(new TfjsTierError('TG_TFJS_WORKER_FAILED', e.message));
          this.sequences.delete(e.id);
        }
      }
    } else if (message.type === 'scored' || message.type === 'score-error') {
      const pending = this.scores.get(message.id);
      this.scores.delete(message.id);
      if (message.type === 'scored') pending?.resolve(message.logprobs);
      else pending?.reject(new TfjsTierError('TG_TFJS_BAD_REQUEST', message.message));
    }
  }

  private die(err: Error): void {
    // 'error' is followed by 'exit': report the crash once.
    if (this.crashed) return;
    this.crashed = true;
    this.alive = false;
    this.failAll(new TfjsTierError('TG_TFJS_WORKER_FAILED', `inference worker died: ${err.message}`));
    this.hooks.onCrash?.(err);
  }

  private failAll(err: TfjsTierError): void {
    for (const channel of this.sequences.values()) channel.fail(err);
    for (const pending of this.scores.values()) pending.reject(err);
    this.sequences.clear();
    this.scores.clear();
  }
}
