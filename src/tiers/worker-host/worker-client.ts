/**
 * Main-thread handle on one inference worker: spawns it, routes its per-step event messages to
 * the sequences' channels, watches its liveness through the run gate, fails every open sequence
 * if the worker dies or stalls, and stops it without ever terminating it inside a run
 * (run-gate.ts says why).
 */
import type { Worker } from 'node:worker_threads';
import type { GatewayError } from '../../errors/gateway-error.js';
import { tokenEvent, type FinishEvent, type TokenEvent } from '../tier.js';
import { EventChannel } from './event-channel.js';
import { judge, type LivenessOptions, type Verdict } from './liveness.js';
import type {
  KeptCall,
  KeptReply,
  MainToWorker,
  SequenceRequest,
  WorkerFault,
  WorkerToMain,
} from './protocol.js';
import { GateView, newGateBuffer } from './run-gate.js';
import { spawnWorker, type WorkerEntry } from './spawn.js';

export type SequenceChannel = EventChannel<TokenEvent | FinishEvent>;

/** The tier's errors for what can go wrong with a worker (each maps to its kind in its own file). */
export interface WorkerErrors {
  /** The worker died, or a run failed: retryable on another tier. */
  failed(message: string): GatewayError;
  /** The worker stalled and is being replaced: retryable on another tier. */
  stalled(message: string): GatewayError;
  closed(): GatewayError;
  badRequest(message: string): GatewayError;
  /** The worker reported `code` while starting (a model it cannot load, ...). */
  startFailed(code: string, message: string): GatewayError;
}

export interface WorkerClientHooks {
  /** Called once per decode step with the number of sequences decoded together. */
  onBatch?(size: number): void;
  /** Called when the worker dies unexpectedly after start (its sequences have failed). */
  onCrash?(error: Error): void;
  /** Called when the worker stalls (its sequences have failed; it is being stopped). */
  onStall?(verdict: Extract<Verdict, { alive: false }>): void;
}

export interface WorkerClientOptions {
  readonly entry: WorkerEntry;
  /** The tier's own init; the gate and heartbeat period are added to it. */
  readonly init: object;
  readonly liveness: LivenessOptions;
  /** Runs are JavaScript or wasm, so terminate() may interrupt one (worker-pool.ts). */
  readonly terminableInRun?: boolean | undefined;
  readonly errors: WorkerErrors;
  readonly hooks?: WorkerClientHooks | undefined;
}

/** How long one wait for a run to end lasts before the stop loop looks again. */
const RUN_END_POLL_MS = 1000;

export class WorkerClient<R> {
  private readonly options: WorkerClientOptions;
  private readonly gateBuffer = newGateBuffer();
  private readonly gate = new GateView(this.gateBuffer);
  private worker: Worker | undefined;
  private readonly sequences = new Map<number, SequenceChannel>();
  private readonly scores = new Map<number, { resolve(v: Float64Array): void; reject(e: Error): void }>();
  /** Kept sequences open on this worker, each with its calls awaiting a reply. */
  private readonly kept = new Map<
    number,
    Map<number, { resolve(v: KeptReply): void; reject(e: Error): void }>
  >();
  private nextId = 1;
  private state: 'new' | 'serving' | 'stopping' | 'exited' = 'new';
  private watch: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | undefined;
  private stalledAt: number | undefined;
  /** Set while the worker is silent past stallMs (liveness.ts); it takes no new sequences. */
  private suspect: string | undefined;
  /** The gate's last sign of life when the worker became suspect. */
  private suspectSign = 0;
  private lastCheckAt: number | undefined;
  /** How late the main thread's looks have been lately (judge()'s slack). */
  private slackMs = 0;
  /** Why the worker stopped serving for good (died, stalled). */
  private failure: string | undefined;

  constructor(options: WorkerClientOptions) {
    this.options = options;
  }

  /** Whether new sequences may go to this worker (serving, and not silent past stallMs). */
  get serving(): boolean {
    return this.state === 'serving' && this.suspect === undefined;
  }

  /** Why the worker takes no new sequences, for the tier's health detail. */
  get detail(): string {
    if (this.failure !== undefined) return this.failure;
    if (this.suspect !== undefined) return `out of service: ${this.suspect}`;
    return this.state === 'new' ? 'starting' : this.state;
  }

  /** Whether the worker was found stalled (it is being, or has been, stopped). */
  get stalled(): boolean {
    return this.stalledAt !== undefined;
  }

  /** Sequences and scorings assigned to this worker (running or queued): the pool balances on it. */
  get load(): number {
    return this.sequences.size + this.scores.size + this.kept.size;
  }

  /** The worker's thread id (tests tell a replacement from the worker it replaced). */
  get threadId(): number | undefined {
    return this.worker?.threadId;
  }

  start(): Promise<R> {
    const { entry, init, liveness, errors } = this.options;
    const worker = spawnWorker(entry, { ...init, gate: this.gateBuffer, heartbeatMs: liveness.heartbeatMs });
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise<R>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerToMain<R>) => {
        if (message.type === 'ready') {
          ready = true;
          this.state = 'serving';
          this.startWatch();
          resolve(message.ready);
        } else if (message.type === 'fatal') {
          reject(errors.startFailed(message.code, message.message));
          void this.stop(errors.failed(message.message));
        } else {
          this.dispatch(message);
        }
      });
      worker.on('error', (err) => {
        if (!ready) reject(errors.failed(`inference worker failed: ${err.message}`));
        else this.die(err);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(errors.failed(`inference worker exited (${code})`));
        else this.die(new Error(`inference worker exited with code ${code}`));
        this.state = 'exited';
        this.stopWatch();
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

  /** Opens a kept sequence (src/tiers/kept-sequence.ts) on this worker; it counts in its load. */
  openKept(stopTokens: readonly number[]): number {
    const id = this.nextId++;
    this.kept.set(id, new Map());
    this.send({ type: 'kept-open', id, stopTokens });
    return id;
  }

  /** One call on kept sequence `id`; rejects with the tier's error if the worker fails meanwhile. */
  keptCall(id: number, request: KeptCall): Promise<KeptReply> {
    const calls = this.kept.get(id);
    if (calls === undefined) {
      return Promise.reject(this.options.errors.failed(this.failure ?? 'the kept sequence is closed'));
    }
    const call = this.nextId++;
    return new Promise((resolve, reject) => {
      calls.set(call, { resolve, reject });
      this.send({ type: 'kept-call', id, call, request });
    });
  }

  /** Frees kept sequence `id` in the worker; a call in flight gets no reply (callers reject it). */
  closeKept(id: number): void {
    if (this.kept.delete(id) && this.state === 'serving')
      this.worker?.postMessage({ type: 'kept-close', id });
  }

  /** Test-only fault injection (protocol.ts WorkerFault). */
  inject(fault: WorkerFault): void {
    this.worker?.postMessage({ type: 'fault', fault } satisfies MainToWorker);
  }

  /** Looks at the gate once (the watch timer calls this every heartbeat period). */
  check(now = Date.now()): Verdict {
    if (this.state !== 'serving') return { alive: true };
    // How late this look is; the slack decays by one period per look (liveness.ts judge()).
    const { heartbeatMs } = this.options.liveness;
    const late = this.lastCheckAt === undefined ? 0 : Math.max(0, now - this.lastCheckAt - heartbeatMs);
    this.lastCheckAt = now;
    this.slackMs = Math.max(late, this.slackMs - heartbeatMs);
    const gate = this.gate.snapshot();
    const verdict = judge(gate, now, this.options.liveness, this.slackMs);
    if (verdict.alive) {
      if (verdict.suspect !== undefined) {
        if (this.suspect === undefined) this.suspectSign = gate.lastSignAt;
        this.suspect = verdict.suspect;
      } else if (gate.state === 'in-run' || gate.lastSignAt !== this.suspectSign) {
        // Back in service only on a sign of life: a late look (more slack, a higher limit) must
        // not put a worker that is still silent back in service for a moment (seen in CI).
        this.suspect = undefined;
      }
    } else {
      this.failure = `stalled: ${verdict.reason}`;
      this.stalledAt = now;
      void this.stop(this.options.errors.stalled(`inference worker stalled: ${verdict.reason}`), false);
      this.options.hooks?.onStall?.(verdict);
    }
    return verdict;
  }

  async close(): Promise<void> {
    await this.stop(this.options.errors.closed());
  }

  /**
   * Fails what is open with `err` and stops the worker: asks it to start no further run, then
   * terminates it as soon as the gate can be sealed (at once, unless a run is in progress: then
   * when that run ends). Resolves when the thread has exited. `hold` (close()): keep the process
   * alive meanwhile, unless the run turns out stalled (stuck in native code, it may never end):
   * then the worker is let go and this resolves; it is still terminated if the run ends. Without
   * `hold` (a stalled worker being replaced) it never holds the process.
   */
  stop(err: GatewayError, hold = true): Promise<void> {
    this.failAll(err);
    if (this.stopped !== undefined) return this.stopped;
    const worker = this.worker;
    if (worker === undefined || this.state === 'exited') return (this.stopped = Promise.resolve());
    this.state = 'stopping';
    this.stopWatch();
    if (!hold) worker.unref();
    this.gate.requestStop();
    worker.postMessage({ type: 'close' } satisfies MainToWorker);
    this.stopped = new Promise<void>((resolve) => {
      // Atomics.waitAsync alone does not keep Node's event loop alive.
      let keepAlive = hold ? setInterval(() => undefined, RUN_END_POLL_MS) : undefined;
      const release = (): void => {
        clearInterval(keepAlive);
        keepAlive = undefined;
        resolve();
      };
      void (async () => {
        let exited = false;
        void this.exited.then(() => (exited = true));
        while (!exited) {
          if (this.gate.trySeal() || this.options.terminableInRun === true) {
            await worker.terminate();
            break;
          }
          await Promise.race([this.gate.runEnded(RUN_END_POLL_MS), this.exited]);
          if (
            keepAlive !== undefined &&
            !judge(this.gate.snapshot(), Date.now(), this.options.liveness, this.slackMs).alive
          ) {
            worker.unref();
            release();
          }
        }
        await this.exited;
        release();
      })();
    });
    return this.stopped;
  }

  /** Whether the worker's thread is inside a run right now (its gate says so). */
  inRun(): boolean {
    return this.gate.snapshot().state === 'in-run';
  }

  private startWatch(): void {
    this.watch = setInterval(() => this.check(), this.options.liveness.heartbeatMs);
    this.watch.unref();
  }

  private stopWatch(): void {
    if (this.watch !== undefined) clearInterval(this.watch);
    this.watch = undefined;
  }

  private send(message: MainToWorker): void {
    if (!this.worker || this.state !== 'serving') {
      this.failAll(this.options.errors.failed('inference worker is not running'));
      return;
    }
    this.worker.postMessage(message);
  }

  private dispatch(message: WorkerToMain<R>): void {
    if (message.type === 'events') {
      if (message.batchSize > 0) this.options.hooks?.onBatch?.(message.batchSize);
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
          channel.fail(this.options.errors.failed(e.message));
          this.sequences.delete(e.id);
        }
      }
    } else if (message.type === 'scored' || message.type === 'score-error') {
      const pending = this.scores.get(message.id);
      this.scores.delete(message.id);
      if (message.type === 'scored') pending?.resolve(message.logprobs);
      else pending?.reject(this.options.errors.badRequest(message.message));
    } else if (message.type === 'kept-result' || message.type === 'kept-error') {
      const calls = this.kept.get(message.id);
      const pending = calls?.get(message.call);
      calls?.delete(message.call);
      if (message.type === 'kept-result') pending?.resolve(message.result);
      else pending?.reject(this.options.errors.badRequest(message.message));
    }
  }

  private die(err: Error): void {
    // 'error' is followed by 'exit'; a worker being stopped is not a crash.
    if (this.state !== 'serving') return;
    this.state = 'exited';
    this.failure = `died: ${err.message}`;
    this.failAll(this.options.errors.failed(`inference worker died: ${err.message}`));
    this.options.hooks?.onCrash?.(err);
  }

  private failAll(err: GatewayError): void {
    for (const channel of this.sequences.values()) channel.fail(err);
    for (const pending of this.scores.values()) pending.reject(err);
    for (const calls of this.kept.values()) for (const pending of calls.values()) pending.reject(err);
    this.sequences.clear();
    this.scores.clear();
    this.kept.clear();
  }
}
