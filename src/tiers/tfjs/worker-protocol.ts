/**
 * What a TensorFlow.js inference worker is started with and reports when ready. The messages are
 * the shared worker protocol (src/tiers/worker-host/protocol.ts).
 */
import type { HostInit } from '../worker-host/protocol.js';
import type { LlamaShape } from './llama-weights.js';

export interface WorkerInit {
  /** The F32 or F16 GGUF the weights are read from. */
  readonly modelPath: string;
  /** Asked of the wasm backend (setThreadsCount); see wasm-backend.ts for what Node allows. */
  readonly threads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Tokens per sequence (prompt + generated). */
  readonly contextLength: number;
}

/** As the worker receives it: the tier's init plus the run gate and heartbeat period. */
export type TfjsWorkerData = WorkerInit & HostInit;

/** What a worker reports once its model is loaded. */
export interface WorkerReady {
  readonly shape: LlamaShape;
  /** Threads the wasm backend really computes with. */
  readonly threads: number;
  readonly simd: boolean;
}
