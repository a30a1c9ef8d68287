/**
 * What an ONNX inference worker is started with. The messages are the shared worker protocol
 * (src/tiers/worker-host/protocol.ts); a worker reports its DecoderSpec when ready.
 */
import type { HostInit } from '../worker-host/protocol.js';

export interface WorkerInit {
  readonly modelPath: string;
  readonly intraOpThreads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly contextLength: number;
}

/** As the worker receives it: the tier's init plus the run gate and heartbeat period. */
export type OnnxWorkerData = WorkerInit & HostInit;
