import { Type, type Static } from '@sinclair/typebox';
import { RoutingSchema } from './policies.js';
import type { TierConfig } from './tiers/index.js';
import { ResilienceSchema } from './resilience.js';
import { KEY_LIMIT_FIELDS } from './key-limits.js';
import { TracingSchema } from './tracing.js';

/**
 * The gateway's configuration, declared once: the TypeScript type and the runtime validation
 * both come from these schemas, and defaults live inside them. Unknown keys are errors
 * (additionalProperties: false) so a typo cannot silently fall back to a default.
 */

const ServerSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    /** Largest accepted request body; bigger bodies get 413. */
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
    /** On SIGTERM, in-flight requests get this long to finish before tiers are closed. */
    shutdownGraceMs: Type.Integer({ minimum: 0, default: 10_000 }),
    /**
     * Connection hygiene: a client must send all its request headers within headersTimeoutMs and
     * the whole request (headers and body) within requestTimeoutMs, or it is answered 408 and
     * disconnected, so slow clients cannot hold sockets (Node's own defaults are 60 s and 300 s).
     * Responses, streams included, are not limited by either. requestTimeoutMs 0 turns it off.
     */
    headersTimeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
    requestTimeoutMs: Type.Integer({ minimum: 0, default: 30_000 }),
    /**
     * How often Node looks for connections past the two timeouts above, so one is closed at most
     * this much after its timeout (Node's default is 30 s).
     */
    connectionsCheckingIntervalMs: Type.Integer({ minimum: 1, default: 1_000 }),
    /**
     * How long an idle keep-alive connection stays open: fastify's default, which is meant to
     * outlast a load balancer's idle timeout so the gateway never closes a socket it reuses.
     */
    keepAliveTimeoutMs: Type.Integer({ minimum: 1, default: 72_000 }),
    /** Honour X-Forwarded-* headers (only behind a trusted proxy). */
    trustProxy: Type.Boolean({ default: false }),
    /**
     * SSE write coalescing (src/api/sse.ts): an event that comes less than this long after the
     * last write waits, at most this long, to share a write with the events after it (its text
     * merged into one chunk per choice). The default is one 60 Hz frame: a reader sees no
     * difference, and a fast tier's stream costs about 60 writes per second instead of thousands.
     * 0 writes every event at once.
     */
    sseCoalesceMs: Type.Number({ minimum: 0, maximum: 1000, default: 16 }),
  },
  { additionalProperties: false, default: {} },
);

/** The gRPC API (proto/tiergate/v1/gateway.proto, docs/grpc-and-workers.md), next to HTTP. */
const GrpcSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /** 0 picks a free port (tests); 50051 is gRPC's customary port. */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 50051 }),
  },
  { additionalProperties: false, default: {} },
);

const LoggingSchema = Type.Object(
  {
    level: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
    /** Prompts and outputs are private data; they are only logged when this is on. */
    logPrompts: Type.Boolean({ default: false }),
    /**
     * More fields to hide in every log line, the per-request summary included: pino redact paths
     * (e.g. `apiKey`, `model`), censored as "[redacted]" (docs/gateway.md "Logs and metrics").
     */
    redact: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { default: [], maxItems: 64 }),
  },
  { additionalProperties: false, default: {} },
);

const ApiKeySchema = Type.Object(
  {
    /** Shown in logs instead of the key. */
    name: Type.String({ minLength: 1 }),
    /** SHA-256 of the key, hex; the preferred form (the config never holds the secret). */
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    /** Name of an environment variable holding the key. */
    env: Type.Optional(Type.String({ minLength: 1 })),
    /** The key itself (development only; it is hashed at load and the plain text dropped). */
    key: Type.Optional(Type.String({ minLength: 8 })),
    scopes: Type.Array(Type.Union([Type.Literal('inference'), Type.Literal('admin')]), {
      minItems: 1,
      default: ['inference'],
    }),
  },
  { additionalProperties: false },
);

const AuthSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    keys: Type.Array(ApiKeySchema, { default: [] }),
  },
  { additionalProperties: false, default: {} },
);

const FamilySchema = Type.Object(
  {
    /** Directory holding the model family's manifest.json and files. */
    dir: Type.String({ minLength: 1, default: 'models/tiny' }),
  },
  { additionalProperties: false, default: {} },
);

const TokenizerSchema = Type.Object(
  {
    /**
     * `gguf`: llama.cpp's vocab-only load of a GGUF of the family (the real tokenizer).
     * `bytes`: one token per UTF-8 byte, for gateway tests and benchmarks without model files.
     */
    kind: Type.Union([Type.Literal('gguf'), Type.Literal('bytes')], { default: 'gguf' }),
    /** GGUF file or manifest variant id to read the vocabulary from; default: the family's first GGUF. */
    model: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false, default: {} },
);

const ChatSchema = Type.Object(
  {
    /**
     * `auto`: the GGUF's own Jinja chat template when it has one, else `plain`.
     * `plain`: "role: content" lines ending with "assistant:"; `chatml`: <|im_start|> markup as text.
     */
    template: Type.Union([Type.Literal('auto'), Type.Literal('plain'), Type.Literal('chatml')], {
      default: 'auto',
    }),
  },
  { additionalProperties: false, default: {} },
);

const ServedModelSchema = Type.Object(
  {
    /** The tier (a key of `tiers`) that serves requests for this model name. */
    tier: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const LimitsSchema = Type.Object(
  {
    /** max_tokens when a request gives none (OpenAI's legacy completions default is 16). */
    defaultMaxTokens: Type.Integer({ minimum: 1, default: 256 }),
    maxTokens: Type.Integer({ minimum: 1, default: 4096 }),
    /** Largest `n` (choices per request). */
    maxChoices: Type.Integer({ minimum: 1, default: 8 }),
    maxStopSequences: Type.Integer({ minimum: 0, default: 4 }),
    maxTopLogprobs: Type.Integer({ minimum: 0, default: 20 }),
    /** Per-key limits and budgets, and their store (src/config/key-limits.ts, docs/governance.md). */
    ...KEY_LIMIT_FIELDS,
  },
  { additionalProperties: false, default: {} },
);

/** Everything except the tiers' own options, which are validated per kind (see load.ts). */
export const ConfigSchema = Type.Object(
  {
    server: ServerSchema,
    grpc: GrpcSchema,
    logging: LoggingSchema,
    auth: AuthSchema,
    family: FamilySchema,
    tokenizer: TokenizerSchema,
    chat: ChatSchema,
    limits: LimitsSchema,
    tiers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]*$' }), Type.Unknown(), { default: {} }),
    models: Type.Record(Type.String({ minLength: 1 }), ServedModelSchema, { default: {} }),
    /** Breakers, admission control, retries and fault injection (src/config/resilience.ts). */
    resilience: ResilienceSchema,
    /** Routing policies and tier latency priors (src/config/policies.ts, docs/routing.md). */
    routing: RoutingSchema,
    /** OpenTelemetry traces (src/config/tracing.ts, docs/tracing.md). */
    tracing: TracingSchema,
  },
  { additionalProperties: false },
);

type RawConfig = Static<typeof ConfigSchema>;
export type ApiKeyConfig = Static<typeof ApiKeySchema>;
export type ServedModelConfig = Static<typeof ServedModelSchema>;
export type LogLevel = RawConfig['logging']['level'];

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The validated, defaulted, deep-frozen configuration. Paths in it are absolute. */
export type Config = DeepReadonly<Omit<RawConfig, 'tiers'> & { tiers: Record<string, TierConfig> }>;
