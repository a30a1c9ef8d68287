import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Liveness of an in-process inference worker (the `onnx` and `tfjs` tiers; docs/main-tier.md
 * "Worker liveness"). Outside a run a worker's event loop must show a sign of life every
 * `stallMs`; a run may take `runStallFactor` × what the worker's recent runs of the same kind
 * predict, plus `runStallMs`. A stalled worker stops serving at once (its sequences fail with a
 * retryable error, so the gateway continues them on another tier) and is replaced.
 */
export const WorkerLivenessSchema = Type.Object(
  {
    /** The worker's heartbeat period, and how often the gateway looks at it. */
    heartbeatMs: Type.Integer({ minimum: 10, maximum: 10_000, default: 100 }),
    /**
     * Longest silence of a worker's event loop outside a run. With the defaults a frozen worker
     * is out of service within ~0.85 s; GC pauses of a worker are far shorter.
     */
    stallMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 750 }),
    /** A run is stalled past this many times its expected duration, plus runStallMs. */
    runStallFactor: Type.Number({ minimum: 1, maximum: 1_000, default: 4 }),
    /**
     * The margin a run gets on top: runs slow down with CPU contention (seen here: a 19 ms run
     * taking 907 ms on 2 busy shared cores), and a worker stuck inside a native run cannot be
     * terminated anyway, so a wide margin costs little.
     */
    runStallMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 3_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type WorkerLivenessConfig = Static<typeof WorkerLivenessSchema>;

/** The defaults, for tiers built without a config (tests, tools). */
export const DEFAULT_WORKER_LIVENESS: WorkerLivenessConfig = Object.freeze(
  Value.Default(WorkerLivenessSchema, {}) as WorkerLivenessConfig,
);
