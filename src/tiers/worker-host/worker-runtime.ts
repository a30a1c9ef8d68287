/**
 * The worker thread's side of a worker-pooled tier: heartbeats into the run gate, the message
 * loop into the tier's engine, the warm-up and the test-only fault hook. The tier's
 * entry (onnx-worker.ts, tfjs-worker.ts) loads its model and hands its engine to serve().
 */
import type { MessagePort } from 'node:worker_threads';
import { RunGate } from './run-gate.js';
import type {
  EngineMessage,
  HostInit,
  KeptMessage,
  MainToWorker,
  WorkerFault,
  WorkerToMain,
} from './protocol.js';

/** What a tier's continuous-batching engine offers the message loop. */
export interface WorkerEngine {
  submit(request: Extract<MainToWorker, { type: 'generate' }>['request']): void;
  cancel(id: number): void;
  score(id: number, tokens: readonly number[]): void;
  /** Start no further step (the main thread terminates the worker once the gate is sealed). */
  close(): void;
  /** Kept sequences (src/tiers/kept-sequence.ts), for engines that keep them. */
  kept?(message: KeptMessage): void;
}

/** The warm-up sequence's id: the main thread numbers real sequences from 1. */
const WARM_UP_ID = 0;

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

export class WorkerRuntime<R> {
  readonly gate: RunGate;
  private readonly port: MessagePort;
  /** Set while the warm-up sequence runs: its events stay in the worker. */
  private warming: (() => void) | undefined;

  constructor(port: MessagePort, host: HostInit) {
    this.port = port;
    this.gate = new RunGate(host.gate);
    this.gate.beat();
    // A timer, not a message: it shows the event loop turns, at no cost to the main thread.
    setInterval(() => this.gate.beat(), host.heartbeatMs);
  }

  readonly post = (message: WorkerToMain<R> | EngineMessage): void => {
    if (this.warming !== undefined && message.type === 'events') {
      if (message.events.some((e) => e.id === WARM_UP_ID && e.kind !== 'token')) this.warming();
      return;
    }
    if (message.type === 'scored') this.port.postMessage(message, [message.logprobs.buffer as ArrayBuffer]);
    else this.port.postMessage(message);
  };

  ready(ready: R): void {
    this.gate.beat();
    this.post({ type: 'ready', ready });
  }

  /**
   * Decodes one short greedy sequence before the worker reports ready: the gate learns what a
   * prefill and a decode step take here (so the first real run is judged against that, not
   * against nothing), and the first request does not pay the runtime's first-run set-up.
   */
  async warmUp(engine: WorkerEngine, contextLength: number): Promise<void> {
    const n = Math.max(1, Math.min(8, contextLength - 3));
    await new Promise<void>((resolve) => {
      this.warming = resolve;
      engine.submit({
        id: WARM_UP_ID,
        tokens: Array.from({ length: n }, (_, i) => i + 1),
        sampling: { temperature: 0, topK: 0, topP: 1 },
        maxTokens: 2,
        stopTokens: [],
        topLogprobs: 0,
      });
    });
    this.warming = undefined;
  }

  fatal(code: string, message: string): void {
    this.post({ type: 'fatal', code, message });
  }

  serve(engine: WorkerEngine): void {
    this.port.on('message', (message: MainToWorker) => this.gate.outside(() => this.handle(engine, message)));
  }

  private handle(engine: WorkerEngine, message: MainToWorker): void {
    switch (message.type) {
      case 'generate':
        engine.submit(message.request);
        break;
      case 'cancel':
        engine.cancel(message.id);
        break;
      case 'score':
        engine.score(message.id, message.tokens);
        break;
      case 'fault':
        this.inject(message.fault);
        break;
      case 'close':
        engine.close();
        break;
      case 'kept-open':
      case 'kept-call':
      case 'kept-close':
        if (engine.kept !== undefined) engine.kept(message);
        else if (message.type === 'kept-call') {
          const reason = 'this tier keeps no sequences';
          this.post({ type: 'kept-error', id: message.id, call: message.call, message: reason });
        }
        break;
    }
  }

  private inject(fault: WorkerFault): void {
    switch (fault.kind) {
      case 'freeze':
        // Blocks this thread's event loop, in a (fake) run when asked: as a stuck native call.
        if (fault.inRun === true) this.gate.runSync('fault', 1, () => sleepSync(fault.ms));
        else sleepSync(fault.ms);
        break;
      case 'throw':
        setImmediate(() => {
          throw new Error('injected fault: an uncaught exception in the inference worker');
        });
        break;
      case 'exit':
        // Ends this thread only (Node's rule for workers); the pool replaces the worker. It runs
        // as JavaScript, so never inside a native run (docs/main-tier.md "Worker liveness").
        process.exit(fault.code);
    }
  }
}
