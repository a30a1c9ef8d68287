import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Liveness of an in-process inference worker (the `onnx` and `tfjs` tiers; docs/main-tier.md
 * "Worker liveness"). Outside a run a worker's event loop must show a sign of life every
 * `stallMs` or it takes no new sequences; silent for `replaceAfterMs`, or in a run longer than
 * `runStallFactor` × what its recent runs of the same kind predict plus `runStallMs`, it is
 * stalled: its sequences fail with a retryable error (the gateway continues them on another
 * tier) and it is replaced.
 */
export const WorkerLivenessSchema = Type.Object(
  {
    /** The worker's heartbeat period, and how often the gateway looks at it. */
    heartbeatMs: Type.Integer({ minimum: 10, maximum: 10_000, default: 100 }),
    /**
     * Silence of a worker's event loop outside a run after which it takes no new sequences (the
     * tier is not ready when no worker takes them) until it shows life again. With the defaults
     * a frozen worker is out of service within ~0.85 s.
     */
    stallMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 750 }),
    /**
     * Silence after which the worker is stalled: its sequences fail (retryable, so the gateway
     * continues them on another tier) and it is replaced; at least stallMs. Why two steps: on an
     * oversubscribed machine a busy worker fell silent for up to 792 ms here (load average 8-10
     * on 2 cores; 186-360 ms in most runs), and failing its streams for that costs more than
     * sending new ones elsewhere for a moment.
     */
    replaceAfterMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 1_500 }),
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
