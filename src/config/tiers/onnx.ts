import { Type, type Static } from '@sinclair/typebox';
import { WorkerLivenessSchema } from './worker-liveness.js';

/**
 * The `onnx` (main) tier: an ONNX decoder (optimum / onnxruntime-genai KV-cache convention) run by
 * onnxruntime-node in worker threads with continuous batching. See docs/main-tier.md.
 */
export const OnnxTierSchema = Type.Object(
  {
    kind: Type.Literal('onnx'),
    /** A variant id from the family manifest (e.g. "onnx-int8") or a path to a .onnx file. */
    model: Type.String({ minLength: 1, default: 'onnx-fp32' }),
    /**
     * Worker threads, each with its own InferenceSession and batch (ORT's run() blocks the
     * thread it runs on). One worker batching many sequences beats several small ones on 2 cores.
     */
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    /** ORT intra-op threads per session; 1 avoids spin contention on small shared machines. */
    intraOpThreads: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
    /** Most sequences decoded together in one run(); more wait in the worker's queue. */
    maxBatchSize: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
    /** How long an idle worker waits for more requests before starting a partial batch. */
    maxQueueDelayMs: Type.Number({ minimum: 0, maximum: 1000, default: 2 }),
    /** Requests waiting beyond the batches' capacity (workers × maxBatchSize) before 429s. */
    maxQueue: Type.Integer({ minimum: 0, default: 64 }),
    /** Tokens per sequence (prompt + generated); 0 means the family manifest's context length. */
    contextLength: Type.Integer({ minimum: 0, default: 0 }),
    /**
     * What `workers × maxBatchSize` concurrent streams are worth in single streams (TierInfo
     * batchSpeedup, docs/routing.md "Queue model"). Absent: each stream at full speed, as the
     * engine assumed before it was measured; on `small` FP32, 16 streams give 4.3-6x one stream
     * (`node --import tsx bench/tiers/onnx-batching.ts`).
     */
    batchSpeedup: Type.Optional(Type.Number({ minimum: 1 })),
    /** When a worker counts as stalled and is replaced (worker-liveness.ts). */
    liveness: Type.Optional(WorkerLivenessSchema),
  },
  { additionalProperties: false },
);
export type OnnxTierConfig = Static<typeof OnnxTierSchema>;
