/**
 * The run gate: a few words of shared memory between an inference worker and the main thread.
 *
 * Why: terminating a worker thread while it is inside onnxruntime-node's native session.run()
 * aborts the whole process (the binding's Napi::Error::New fails on the terminating thread:
 * "FATAL ERROR: Error::Error napi_define_properties"), and so does the process exiting with a
 * worker in a run. So the worker marks every run in the gate, and the main thread terminates it
 * only after sealing the gate while no run is in progress: a sealed gate lets no run start, so
 * the thread is in JavaScript (or parked) when terminate() lands. The gate also carries the
 * worker's liveness: the time of its last sign of life (heartbeat or run boundary) and the
 * current run's start and expected duration (liveness.ts judges them).
 */

/** Int32 slots. */
const STATE = 0;
const EXPECTED_MS = 1;
const STOP = 2;
/** BigInt64 slots (byte offsets 16 and 24). */
const LAST_SIGN = 2;
const RUN_STARTED = 3;
const GATE_BYTES = 32;

const IDLE = 0;
const IN_RUN = 1;
const SEALED = 2;

const MAX_INT32 = 2 ** 31 - 1;
/** How fast a kind's learned cost follows a faster run; a slower run is taken at once. */
const DECAY = 0.8;

/** Atomics.waitAsync (Node >= 16); the project's TypeScript lib (ES2022) does not declare it yet. */
type WaitAsync = (
  typed: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export type GateState = 'idle' | 'in-run' | 'sealed';

export interface GateSnapshot {
  readonly state: GateState;
  /** ms since the epoch of the worker's last heartbeat or run boundary. */
  readonly lastSignAt: number;
  /** ms since the epoch the current run started (state in-run). */
  readonly runStartedAt: number;
  /** What the worker expects the current run to take, from its recent runs of the same kind. */
  readonly expectedMs: number;
}

export function newGateBuffer(): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(GATE_BYTES);
  new BigInt64Array(buffer)[LAST_SIGN] = BigInt(Date.now());
  return buffer;
}

function stateName(value: number): GateState {
  return value === IN_RUN ? 'in-run' : value === SEALED ? 'sealed' : 'idle';
}

/** The main thread's side. */
export class GateView {
  private readonly words: Int32Array;
  private readonly times: BigInt64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    this.times = new BigInt64Array(buffer);
  }

  snapshot(): GateSnapshot {
    return {
      state: stateName(Atomics.load(this.words, STATE)),
      lastSignAt: Number(Atomics.load(this.times, LAST_SIGN)),
      runStartedAt: Number(Atomics.load(this.times, RUN_STARTED)),
      expectedMs: Atomics.load(this.words, EXPECTED_MS),
    };
  }

  /** Asks the worker to start no further run (it parks at its next one). */
  requestStop(): void {
    Atomics.store(this.words, STOP, 1);
  }

  /**
   * Seals the gate unless a run is in progress: from then no run starts, so terminating the
   * worker is safe. True when the gate is (now or already) sealed.
   */
  trySeal(): boolean {
    const was = Atomics.compareExchange(this.words, STATE, IDLE, SEALED);
    return was === IDLE || was === SEALED;
  }

  /** Resolves once the current run has ended, or after `timeoutMs`. */
  async runEnded(timeoutMs: number): Promise<void> {
    const wait = waitAsync(this.words, STATE, IN_RUN, timeoutMs);
    if (wait.async) await wait.value;
  }
}

/** The worker's side: every model run goes through run() or runSync(). */
export class RunGate {
  private readonly words: Int32Array;
  private readonly times: BigInt64Array;
  /** Learned ms per unit of cost, by kind of run (e.g. prefill tokens, decode-step rows). */
  private readonly rates = new Map<string, number>();

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
    this.times = new BigInt64Array(buffer);
  }

  /** A sign of life from the worker's event loop. */
  beat(): void {
    Atomics.store(this.times, LAST_SIGN, BigInt(Date.now()));
  }

  inRun(): boolean {
    return Atomics.load(this.words, STATE) === IN_RUN;
  }

  /**
   * Runs `fn` (a model run of `kind` costing `cost` units, e.g. tokens) marked in the gate.
   * `fn` may only call into native code synchronously or through one awaited promise.
   */
  async run<T>(kind: string, cost: number, fn: () => Promise<T>): Promise<T> {
    const started = this.enter(kind, cost);
    try {
      return await fn();
    } finally {
      this.leave(kind, cost, started);
    }
  }

  runSync<T>(kind: string, cost: number, fn: () => T): T {
    const started = this.enter(kind, cost);
    try {
      return fn();
    } finally {
      this.leave(kind, cost, started);
    }
  }

  /**
   * Runs `fn`, a message handler or timer callback: JavaScript on this thread, so whatever run is
   * pending (an awaited native call that has not started, or has returned) is not on the stack,
   * and the gate says so while `fn` runs. A handler that blocks the event loop is then judged by
   * the heartbeat rule and the thread may be terminated; the run's mark comes back afterwards,
   * unless the main thread sealed the gate meanwhile.
   */
  outside<T>(fn: () => T): T {
    this.beat();
    const wasInRun = Atomics.compareExchange(this.words, STATE, IN_RUN, IDLE) === IN_RUN;
    if (wasInRun) Atomics.notify(this.words, STATE);
    try {
      return fn();
    } finally {
      // Sealed meanwhile: the main thread is about to terminate this thread. (A run `fn` started
      // itself, if any, already holds the mark.)
      if (wasInRun && Atomics.compareExchange(this.words, STATE, IDLE, IN_RUN) === SEALED) this.park();
    }
  }

  private enter(kind: string, cost: number): number {
    if (Atomics.load(this.words, STOP) === 1) this.park();
    const now = Date.now();
    Atomics.store(this.times, RUN_STARTED, BigInt(now));
    Atomics.store(this.words, EXPECTED_MS, Math.min(MAX_INT32, Math.ceil(this.expected(kind, cost))));
    // The main thread sealed the gate to terminate this worker: never start a run now.
    if (Atomics.compareExchange(this.words, STATE, IDLE, IN_RUN) !== IDLE) this.park();
    return now;
  }

  private leave(kind: string, cost: number, started: number): void {
    const now = Date.now();
    const rate = (now - started) / Math.max(1, cost);
    const was = this.rates.get(kind);
    this.rates.set(kind, was === undefined ? rate : Math.max(rate, was * DECAY + rate * (1 - DECAY)));
    Atomics.store(this.times, LAST_SIGN, BigInt(now));
    Atomics.compareExchange(this.words, STATE, IN_RUN, IDLE);
    Atomics.notify(this.words, STATE);
  }

  /** A kind not run before is expected to take no time: only the stall margin applies to it. */
  private expected(kind: string, cost: number): number {
    return (this.rates.get(kind) ?? 0) * Math.max(1, cost);
  }

  /** Blocks this thread until the main thread terminates it (terminate() interrupts the wait). */
  private park(): never {
    Atomics.store(this.words, STOP, 1);
    for (;;) Atomics.wait(this.words, STOP, 1);
  }
}
