import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Default of `reclaimEveryMiB`: at most 16 MiB of sampler memory waits for V8 (the soak's bound
 * is 30 MB), and a full collection runs every ~680 requests on the tiny model (vocabulary 2,048),
 * ~170 on small (8,192). Each pauses the process: 74-100 ms mean in `npm run bench:soak` on a
 * machine at load 7-10, 48.6 ms in the tier's own loop (bench/edge-native-memory.ts).
 */
export const RECLAIM_EVERY_MIB = 16;

const StepLivenessSchema = Type.Object(
  {
    checkMs: Type.Integer({ minimum: 10, maximum: 10_000, default: 100 }),
    runStallFactor: Type.Number({ minimum: 1, maximum: 1_000, default: 4 }),
    runStallMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 3_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type StepLivenessConfig = Static<typeof StepLivenessSchema>;
export const DEFAULT_STEP_LIVENESS: StepLivenessConfig = Object.freeze(
  Value.Default(StepLivenessSchema, {}) as StepLivenessConfig,
);

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
    /**
     * Run a full garbage collection after this many MiB of ended evaluations wait for one: each
     * evaluation leaves vocabulary x 12 bytes of native sampler memory that only V8's collector
     * frees (src/tiers/llamacpp/native-reclaim.ts). 0 leaves it to V8, whose heuristics do not
     * see that memory (25 KB of RSS per request on the tiny model: bench/edge-native-memory.ts).
     * Optional in the type so that options built in code without it get the default too.
     */
    reclaimEveryMiB: Type.Optional(Type.Number({ minimum: 0, default: RECLAIM_EVERY_MIB })),
    /**
     * When a step counts as stalled (src/tiers/llamacpp/step-watch.ts): past runStallFactor x
     * what recent steps predict plus runStallMs, the request fails over (retryable) and the tier
     * is not ready until a step completes. The same margins as an ONNX worker's runs
     * (worker-liveness.ts): a native call cannot be interrupted, so a wide margin costs little.
     * Optional in the type so that options built in code without it get the defaults too.
     */
    liveness: Type.Optional(StepLivenessSchema),
  },
  { additionalProperties: false },
);
export type LlamaCppTierConfig = Static<typeof LlamaCppTierSchema>;
