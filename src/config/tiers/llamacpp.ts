import { Type, type Static } from '@sinclair/typebox';

/** The `llamacpp` (edge) tier: a GGUF variant of the model family run in process by node-llama-cpp. */
export const LlamaCppTierSchema = Type.Object(
  {
    kind: Type.Literal('llamacpp'),
    /** A variant id from the family manifest (e.g. "gguf-q4_k_m") or a path to a .gguf file. */
    model: Type.String({ minLength: 1, default: 'gguf-q4_k_m' }),
    /**
     * Native evaluation threads. 1 is the default because on 2 shared cores a second spinning
     * thread made decoding ~40× slower in measurements (docs/gateway.md, edge tier options);
     * raise it on bigger machines.
     */
    threads: Type.Integer({ minimum: 0, default: 1 }),
    /** Concurrent generations (llama.cpp context sequences, batched together on each step). */
    sequences: Type.Integer({ minimum: 1, maximum: 64, default: 8 }),
    /** Tokens per sequence; 0 means the model's training context length. */
    contextSize: Type.Integer({ minimum: 0, default: 0 }),
    /** llama.cpp batch size (tokens evaluated per step across all sequences). */
    batchSize: Type.Integer({ minimum: 1, default: 512 }),
    /**
     * llama.cpp's flash-attention kernel: `auto` lets llama.cpp decide (it picks flash attention on
     * CPU too). Off by default: on the bundled model on CPU it decoded 1.3–1.6× slower for one
     * stream (1.1× for eight) than the plain attention path (`npm run bench:edge` prints both), with
     * the same greedy tokens.
     */
    flashAttention: Type.Union([Type.Boolean(), Type.Literal('auto')], { default: false }),
    /** Requests waiting for a free sequence beyond this are refused with 429. */
    maxQueue: Type.Integer({ minimum: 0, default: 64 }),
    /**
     * What the router assumes `sequences` concurrent streams are worth in single streams (TierInfo
     * batchSpeedup). 1: on a CPU llama.cpp gains little from evaluating sequences together
     * (`npm run bench:edge-batching`: 1.0–1.6× at 8 sequences here, ggml's own ceiling 1.5–2.5×),
     * so concurrent requests are planned as if they ran one after another.
     */
    batchSpeedup: Type.Number({ minimum: 1, default: 1 }),
  },
  { additionalProperties: false },
);
export type LlamaCppTierConfig = Static<typeof LlamaCppTierSchema>;
