import { Type, type Static } from '@sinclair/typebox';
import { WorkerLivenessSchema } from './worker-liveness.js';

/**
 * The `tfjs` tier: the family's LLaMA written in TensorFlow.js ops on the WebAssembly (XNNPACK)
 * backend, in worker threads with continuous batching; weights from the family's F32 or F16 GGUF,
 * computed in FP32. See docs/tf-tier.md.
 */
export const TfjsTierSchema = Type.Object(
  {
    kind: Type.Literal('tfjs'),
    /**
     * A variant id from the family manifest (e.g. "tensorflow-fp32", or any F32/F16 GGUF variant)
     * or a path to an F32/F16 .gguf file.
     */
    model: Type.String({ minLength: 1, default: 'tensorflow-fp32' }),
    /** Worker threads, each with its own copy of the weights and its own batch. */
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    /**
     * Threads asked of the wasm backend (setThreadsCount). tfjs 4.22 turns its threaded build off
     * under Node, so every worker computes on one thread today; the tier logs when it gets fewer.
     */
    threads: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    /** Most sequences decoded together in one forward; more wait in the worker's queue. */
    maxBatchSize: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
    /** How long an idle worker waits for more requests before starting a partial batch. */
    maxQueueDelayMs: Type.Number({ minimum: 0, maximum: 1000, default: 2 }),
    /** Requests waiting beyond the batches' capacity (workers × maxBatchSize) before 429s. */
    maxQueue: Type.Integer({ minimum: 0, default: 64 }),
    /** Tokens per sequence (prompt + generated); 0 means the family's context length. */
    contextLength: Type.Integer({ minimum: 0, default: 0 }),
    /**
     * What `workers × maxBatchSize` concurrent streams are worth in single streams (TierInfo
     * batchSpeedup, docs/routing.md "Queue model"); absent: each stream at full speed.
     */
    batchSpeedup: Type.Optional(Type.Number({ minimum: 1 })),
    /** When a worker counts as stalled and is replaced (worker-liveness.ts). */
    liveness: Type.Optional(WorkerLivenessSchema),
  },
  { additionalProperties: false },
);
export type TfjsTierConfig = Static<typeof TfjsTierSchema>;
