import { Type, type Static } from '@sinclair/typebox';

/**
 * The `remote` tier: a tier served over gRPC (proto/tiergate/v1/tier.proto), e.g. the PyTorch
 * sidecar (sidecar/). Either `address` names a running server (Kubernetes, another machine), or
 * `spawn: true` makes the gateway start and supervise the Python sidecar itself. Exactly one of
 * the two must be given (checked by remoteConfigProblems()).
 */
export const RemoteTierSchema = Type.Object(
  {
    kind: Type.Literal('remote'),
    /** host:port of a running tier server. */
    address: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Several tier servers (host:port each, e.g. `tiergate worker` replicas) behind this one tier:
     * requests go to the serving one with the fewest outstanding requests (docs/grpc-and-workers.md).
     */
    // Typed readonly: the loaded config is deep-frozen (Config is DeepReadonly).
    addresses: Type.Optional(
      Type.Unsafe<readonly string[]>(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    ),
    /**
     * Resolve the host names of `address` / `addresses` to every IP they have (a Kubernetes
     * headless Service) and balance over all of them, re-resolving every resolveIntervalMs.
     */
    resolve: Type.Boolean({ default: false }),
    resolveIntervalMs: Type.Integer({ minimum: 100, default: 30_000 }),
    /** Start the PyTorch sidecar from the gateway, wait for its health check, restart it on crash. */
    spawn: Type.Boolean({ default: false }),
    /** Debian's interpreter with python3-torch and python3-grpcio (the first python3 on PATH may lack them). */
    python: Type.String({ minLength: 1, default: '/usr/bin/python3' }),
    /** Variant id from the family manifest (an F32/F16 GGUF, e.g. "pytorch-fp32") or a .gguf path. */
    model: Type.String({ minLength: 1, default: 'pytorch-fp32' }),
    /** torch intra-op threads in the sidecar; 1 avoids spin contention on small shared machines. */
    threads: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
    /** Requests the sidecar serves at once; more wait for a slot until their deadline. */
    maxConcurrent: Type.Integer({ minimum: 1, maximum: 256, default: 2 }),
    /** Interface the spawned sidecar listens on (port 0: a free port, reported back on start). */
    listen: Type.String({ minLength: 1, default: '127.0.0.1:0' }),
    /** Extra environment for the spawned sidecar. */
    env: Type.Record(Type.String(), Type.String(), { default: {} }),
    /**
     * false (default): when the server cannot be started or reached, the gateway still starts and
     * serves its other tiers; this one reports not ready (with the reason, in /readyz and logs)
     * and keeps retrying. true: the gateway refuses to start without it.
     */
    required: Type.Boolean({ default: false }),
    /** How long the sidecar may take to load its model and report SERVING. */
    startTimeoutMs: Type.Integer({ minimum: 100, default: 60_000 }),
    /** Crash restarts: delay starts at initialDelayMs and doubles up to maxDelayMs. */
    restart: Type.Object(
      {
        initialDelayMs: Type.Integer({ minimum: 0, default: 500 }),
        maxDelayMs: Type.Integer({ minimum: 0, default: 30_000 }),
        /** A process that stayed up this long resets the delay to initialDelayMs. */
        resetAfterMs: Type.Integer({ minimum: 0, default: 60_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** HTTP/2 keepalive ping interval on the channel (dead peers are noticed within ~2 intervals). */
    keepaliveMs: Type.Integer({ minimum: 1000, default: 10_000 }),
    /** How often the tier's health is checked (grpc.health.v1 Check). */
    healthIntervalMs: Type.Integer({ minimum: 100, default: 2_000 }),
    /** Time to connect to an external `address` at start. */
    connectTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
    /** gRPC deadline for requests that carry no deadline of their own. */
    requestTimeoutMs: Type.Integer({ minimum: 1, default: 300_000 }),
  },
  { additionalProperties: false },
);
export type RemoteTierConfig = Static<typeof RemoteTierSchema>;

/** Cross-field rules the schema cannot express; an empty list means the options are usable. */
export function remoteConfigProblems(config: RemoteTierConfig): string[] {
  if (config.address !== undefined && config.addresses !== undefined) {
    return ['give either address or addresses (a list of tier servers), not both'];
  }
  if (config.spawn && (config.addresses !== undefined || config.resolve)) {
    return ['addresses and resolve are for external tier servers; spawn: true starts one sidecar'];
  }
  if (!config.spawn && config.addresses !== undefined) return [];
  if (config.spawn && config.address !== undefined) {
    return ['give either address (an external server) or spawn: true (a supervised sidecar), not both'];
  }
  if (!config.spawn && config.address === undefined) {
    return ['give address (host:port of a tier server) or spawn: true to start the PyTorch sidecar'];
  }
  return [];
}
