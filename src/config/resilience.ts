import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';

/**
 * The `resilience` section: per-tier circuit breaker, admission control and fault injection,
 * plus the gateway-wide retry budget. Every value here can change on a hot reload
 * (docs/resilience.md). Settings under `tiers.<name>` override `defaults` field by field.
 */

const BreakerSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    /** Open when at least this % of the streams in the rolling window failed. */
    errorThresholdPercentage: Type.Number({ minimum: 0, maximum: 100, default: 50 }),
    /** Fewest streams in the window before the breaker may open (avoids opening on 1 of 1). */
    volumeThreshold: Type.Integer({ minimum: 0, default: 5 }),
    /** Time the breaker stays open before it lets one trial stream through (half-open). */
    resetTimeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
    /** Length of the rolling statistics window. */
    rollingWindowMs: Type.Integer({ minimum: 10, default: 10_000 }),
    /** Buckets in that window; rollingWindowMs must divide evenly by it (opossum's rule). */
    rollingBuckets: Type.Integer({ minimum: 1, default: 10 }),
  },
  { additionalProperties: false, default: {} },
);

const AdmissionSchema = Type.Object(
  {
    /**
     * Streams running on the tier at once; 0 = the tier's own capacity (llama.cpp `sequences`,
     * ONNX `workers × maxBatchSize`, remote `maxConcurrent`), unlimited for a tier that states
     * none (echo). docs/architecture.md "Capacity and deadlines".
     */
    maxConcurrent: Type.Integer({ minimum: 0, default: 0 }),
    /**
     * Requests waiting for a slot; beyond it requests are shed with 429. When only `defaults`
     * set it, a tier's own `maxQueue` option (edge, main) wins for that tier.
     */
    maxQueue: Type.Integer({ minimum: 0, default: 64 }),
    /**
     * Expected time one queued request waits per request ahead of it, before live measurements
     * exist; used to shed (503) requests whose queue wait would exceed their deadline.
     */
    initialServiceMs: Type.Number({ minimum: 0, default: 200 }),
  },
  { additionalProperties: false, default: {} },
);

/** Envoy fault-filter style (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/fault_filter). */
const FaultSchema = Type.Object(
  {
    /** Fraction (0–1) of streams that fail before their first token. */
    errorRate: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    /** Fraction of streams delayed by `delayMs` before they start. */
    delayRate: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    delayMs: Type.Integer({ minimum: 0, default: 0 }),
    /** Fraction of streams that fail after `failAfterTokens` tokens were streamed. */
    failAfterTokensRate: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    failAfterTokens: Type.Integer({ minimum: 0, default: 0 }),
    /** Fraction of streams that hang (never produce another event) until aborted. */
    hangRate: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    /** Tokens streamed before a hanging stream stops (0 = hang before the first token). */
    hangAfterTokens: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false, default: {} },
);

const TierResilienceSchema = Type.Object(
  {
    breaker: BreakerSchema,
    admission: AdmissionSchema,
    fault: FaultSchema,
    /**
     * Tiers tried after this one, in order, when it fails or sheds (until the policy engine's
     * RoutePlan supplies the attempt list itself).
     */
    fallbacks: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** Time one attempt on this tier may take before it is abandoned (0 = only the request deadline). */
    attemptTimeoutMs: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false, default: {} },
);

/**
 * A per-tier override: the same fields, all optional and WITHOUT defaults (a default filled in
 * here would hide the `defaults` section's value).
 */
function overrideOf<T extends TObject>(schema: T): TObject {
  const props: Record<string, TSchema> = {};
  for (const [key, value] of Object.entries(schema.properties)) {
    const { default: _unused, ...rest } = value as TSchema & { default?: unknown };
    props[key] = Type.Optional(Type.Unsafe(rest));
  }
  return Type.Object(props, { additionalProperties: false });
}

interface TierOverride {
  readonly breaker?: Partial<BreakerSettings>;
  readonly admission?: Partial<AdmissionSettings>;
  readonly fault?: Partial<FaultSettings>;
  readonly fallbacks?: readonly string[];
  readonly attemptTimeoutMs?: number;
}

const TierOverrideSchema = Type.Unsafe<TierOverride>(
  Type.Object(
    {
      breaker: Type.Optional(overrideOf(BreakerSchema)),
      admission: Type.Optional(overrideOf(AdmissionSchema)),
      fault: Type.Optional(overrideOf(FaultSchema)),
      fallbacks: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
      attemptTimeoutMs: Type.Optional(Type.Integer({ minimum: 0 })),
    },
    { additionalProperties: false },
  ),
);

/** One budget per tier, each with these settings (src/resilience/retry-budget.ts). */
const RetryBudgetSchema = Type.Object(
  {
    /** Retries allowed per request, on average (Finagle-style budget: 0.2 = retries ≤ 20 % of requests). */
    ratio: Type.Number({ minimum: 0, maximum: 10, default: 0.2 }),
    /** Retries always allowed per second, so a quiet gateway can still retry. */
    minPerSecond: Type.Number({ minimum: 0, default: 1 }),
    /** Window over which deposits expire. */
    windowMs: Type.Integer({ minimum: 100, default: 10_000 }),
  },
  { additionalProperties: false, default: {} },
);

export const ResilienceSchema = Type.Object(
  {
    /** Deadline of a whole request when the client and the policy give none. */
    requestTimeoutMs: Type.Integer({ minimum: 1, default: 60_000 }),
    retryBudget: RetryBudgetSchema,
    defaults: TierResilienceSchema,
    tiers: Type.Record(Type.String({ minLength: 1 }), TierOverrideSchema, { default: {} }),
    /** Watch the config file and reload on change (SIGHUP always reloads). */
    watchConfig: Type.Boolean({ default: true }),
  },
  { additionalProperties: false, default: {} },
);

export type ResilienceConfig = Static<typeof ResilienceSchema>;
export type TierResilience = Static<typeof TierResilienceSchema>;
export type BreakerSettings = Static<typeof BreakerSchema>;
export type AdmissionSettings = Static<typeof AdmissionSchema>;
export type FaultSettings = Static<typeof FaultSchema>;
export type RetryBudgetSettings = Static<typeof RetryBudgetSchema>;

type ReadonlyDeep<T> = T extends readonly (infer E)[]
  ? readonly ReadonlyDeep<E>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;

/** The effective settings of one tier: defaults overlaid with its `tiers.<name>` entry. */
export function tierResilience(config: ReadonlyDeep<ResilienceConfig>, tier: string): TierResilience {
  const d = config.defaults;
  const o = config.tiers[tier] ?? {};
  return {
    breaker: { ...d.breaker, ...o.breaker },
    admission: { ...d.admission, ...o.admission },
    fault: { ...d.fault, ...o.fault },
    fallbacks: [...(o.fallbacks ?? d.fallbacks)],
    attemptTimeoutMs: o.attemptTimeoutMs ?? d.attemptTimeoutMs,
  };
}

/** Cross-field checks the schema cannot express; each problem names the path to fix. */
export function checkResilience(
  config: ReadonlyDeep<ResilienceConfig>,
  tierNames: readonly string[],
): string[] {
  const problems: string[] = [];
  const known = new Set(tierNames);
  const list = tierNames.join(', ') || '(none)';
  for (const name of Object.keys(config.tiers)) {
    if (!known.has(name))
      problems.push(`/resilience/tiers/${name}: no tier named "${name}" (tiers: ${list})`);
  }
  for (const name of ['defaults', ...tierNames]) {
    const t = name === 'defaults' ? config.defaults : tierResilience(config, name);
    const at = name === 'defaults' ? '/resilience/defaults' : `/resilience/tiers/${name}`;
    if (t.breaker.rollingWindowMs % t.breaker.rollingBuckets !== 0) {
      problems.push(
        `${at}/breaker: rollingWindowMs (${t.breaker.rollingWindowMs}) must be a multiple of rollingBuckets (${t.breaker.rollingBuckets})`,
      );
    }
    if (name === 'defaults') continue;
    for (const f of t.fallbacks) {
      if (!known.has(f)) problems.push(`${at}/fallbacks: no tier named "${f}" (tiers: ${list})`);
      if (f === name) problems.push(`${at}/fallbacks: a tier cannot be its own fallback`);
    }
  }
  return problems;
}
