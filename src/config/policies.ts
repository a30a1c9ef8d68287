import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Routing policies and tier latency priors (docs/routing.md). The same schema validates the
 * `routing:` section of the gateway config and a stand-alone policy file for `tiergate simulate`.
 */

const PolicySchema = Type.Object(
  {
    /** Candidate tiers (keys of `tiers`); the engine only ever routes among these. */
    tiers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true }),
    objective: Type.Union(
      [Type.Literal('cheapest'), Type.Literal('fastest'), Type.Literal('most_accurate')],
      {
        default: 'cheapest',
      },
    ),
    /** Default end-to-end budget (arrival to last token) when the request sets none. */
    latencyBudgetMs: Type.Number({ exclusiveMinimum: 0, default: 30_000 }),
    /** Default lowest accuracy relative to the FP32 reference (0 accepts any tier). */
    accuracyFloor: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    /**
     * Order of the tiers tried after the chosen one fails (a subset of `tiers`); empty means the
     * other feasible tiers in objective order.
     */
    fallback: Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, default: [] }),
    /** Price per 1,000 tokens (prompt + completion) per tier, in any unit; missing tiers cost 0. */
    costPer1kTokens: Type.Record(Type.String({ minLength: 1 }), Type.Number({ minimum: 0 }), { default: {} }),
    /**
     * Headroom kept for other traffic (docs/routing.md "Load limits"): this policy plans a tier
     * first only while the tier's load (requests running and queued on it, every policy's) is
     * below its limit here, e.g. bulk work kept off the tier that latency-bound requests need.
     */
    maxLoad: Type.Record(Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 }), { default: {} }),
    /**
     * Speculative decoding across tiers (docs/speculative.md): when the engine routes to `verify`,
     * `draft` proposes up to k tokens and `verify` checks them in one forward pass; the output is
     * the verify tier's (token for token when greedy).
     */
    speculative: Type.Optional(
      Type.Object(
        {
          draft: Type.String({ minLength: 1 }),
          verify: Type.String({ minLength: 1 }),
          /** Draft tokens per verify step to start with. */
          k: Type.Integer({ minimum: 1, maximum: 16, default: 4 }),
          /** Most draft tokens per step when k adapts (default: 2k, at most 16). */
          maxK: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
          /** k follows the measured acceptance rate and step costs (false: always k). */
          adaptive: Type.Boolean({ default: true }),
          /**
           * Draft the next block while the verify tier checks this one. Off by default: on this
           * 2-core machine it did not pay (docs/speculative.md "Lookahead").
           */
          lookahead: Type.Boolean({ default: false }),
          /** Streams on the verify tier at which speculation gives way to plain decoding (default: its capacity). */
          stopAtLoad: Type.Optional(Type.Integer({ minimum: 1 })),
          /**
           * `always`: speculate whenever the engine routes to `verify` and the pair can run.
           * `faster`: only when the engine predicts the pair faster than `verify` alone (its
           * measured latency, or the prior until measured); one request in 16 speculates anyway,
           * so a pair measured slow is measured again (docs/speculative.md "When it speculates").
           */
          when: Type.Union([Type.Literal('always'), Type.Literal('faster')], { default: 'always' }),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * A cascade (docs/cascade.md): when the engine routes to `then`, the cheaper tier `first`
     * answers first and the request escalates to `then` (from scratch, nothing sent yet) when the
     * first answer's opening `probeTokens` tokens are below its confidence threshold.
     * The client receives only the answer kept. Not combinable with `speculative`.
     */
    cascade: Type.Optional(
      Type.Object(
        {
          first: Type.String({ minLength: 1 }),
          then: Type.String({ minLength: 1 }),
          /** Keep when the probe's mean natural-log probability per token is at least this (≤ 0). */
          minMeanLogprob: Type.Optional(Type.Number({ maximum: 0 })),
          /**
           * Keep when, at every probe token, the first tier's most likely token leads the
           * runner-up by at least this many nats (a near tie is where a quantized model and its
           * FP32 reference part ways). Exactly one of minMeanLogprob, minMargin.
           */
          minMargin: Type.Optional(Type.Number({ minimum: 0 })),
          /** Tokens the first tier's confidence is judged on (held back from the client until then). */
          probeTokens: Type.Integer({ minimum: 1, maximum: 256, default: 8 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** When no tier meets both budgets: serve on the closest tier, or refuse with 422. */
    onInfeasible: Type.Union([Type.Literal('best_effort'), Type.Literal('reject')], {
      default: 'best_effort',
    }),
  },
  { additionalProperties: false },
);

/** Prior latency model of a tier, used until enough live requests have been observed. */
const ProfileSeedSchema = Type.Object(
  {
    /** Time to first token for an empty prompt, queue excluded. */
    ttftMs: Type.Number({ minimum: 0, default: 50 }),
    /** Added to TTFT per prompt token (prefill cost). */
    ttftPerPromptTokenMs: Type.Number({ minimum: 0, default: 0.5 }),
    /** Time per output token after the first. */
    perOutputTokenMs: Type.Number({ minimum: 0, default: 5 }),
    /** Queue wait when the tier has free capacity. */
    queueMs: Type.Number({ minimum: 0, default: 0 }),
    /** Overrides the manifest-derived accuracy (e.g. from an offline eval), in (0, 1]. */
    accuracy: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

export const RoutingSchema = Type.Object(
  {
    policies: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][\\w.-]*$' }), PolicySchema, { default: {} }),
    /** Policy for requests that name none and match no model/key rule; absent: the static model table. */
    defaultPolicy: Type.Optional(Type.String({ minLength: 1 })),
    /** Served model name → policy. */
    byModel: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {} }),
    /** API key name (auth.keys[].name) → policy. */
    byApiKey: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {} }),
    profiles: Type.Record(Type.String({ minLength: 1 }), ProfileSeedSchema, { default: {} }),
    /** The latency model's quantile: predictions are this tail of recent requests (0.9 = p90). */
    quantile: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.9 }),
    /** Recent requests per tier the latency model keeps. */
    window: Type.Integer({ minimum: 8, maximum: 100_000, default: 256 }),
    /** Live requests a tier needs before its measurements replace the configured prior. */
    minSamples: Type.Integer({ minimum: 1, default: 8 }),
    /**
     * Until some tier has measured how much other busy tiers slow it down (tiers on one machine
     * share its cores), each tier is predicted this fraction slower per other busy tier: e.g. 0.5
     * adds half its own TTFT and time per token. 0: the tiers do not slow each other until measured
     * (tiers on separate machines). docs/routing.md "Load-aware latency models".
     */
    busyTierSlowdown: Type.Number({ minimum: 0, maximum: 10, default: 0 }),
  },
  { additionalProperties: false, default: {} },
);

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** As held in the frozen Config. */
export type RoutingConfig = DeepReadonly<Static<typeof RoutingSchema>>;
export type PolicyConfig = DeepReadonly<Static<typeof PolicySchema>>;
export type ProfileSeed = DeepReadonly<Static<typeof ProfileSeedSchema>>;

/**
 * Fills in the defaults of each policy and profile. TypeBox's Value.Default (0.34) does not
 * descend into Record values, so the config loader calls this before validating.
 */
export function withRoutingDefaults(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const out = { ...(raw as Record<string, unknown>) };
  const each = (key: string, schema: typeof PolicySchema | typeof ProfileSeedSchema): void => {
    const rec = out[key];
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return;
    out[key] = Object.fromEntries(
      Object.entries(rec as Record<string, unknown>).map(([k, v]) => [
        k,
        typeof v === 'object' && v !== null ? Value.Default(schema, structuredClone(v)) : v,
      ]),
    );
  };
  each('policies', PolicySchema);
  each('profiles', ProfileSeedSchema);
  return out;
}

/**
 * Cross-field checks (names that must exist), as operator-facing messages; `prefix` is the JSON
 * path of the routing section.
 */
export function routingProblems(
  routing: RoutingConfig,
  tierNames: readonly string[],
  prefix = '/routing',
): string[] {
  const problems: string[] = [];
  const tiers = new Set(tierNames);
  const known = tierNames.join(', ') || '(none)';
  const policyNames = Object.keys(routing.policies);
  const policyRef = (path: string, name: string): void => {
    if (!Object.hasOwn(routing.policies, name)) {
      problems.push(`${path}: no policy named "${name}" (policies: ${policyNames.join(', ') || '(none)'})`);
    }
  };
  for (const [name, p] of Object.entries(routing.policies)) {
    p.tiers.forEach((t, i) => {
      if (!tiers.has(t))
        problems.push(`${prefix}/policies/${name}/tiers/${i}: no tier named "${t}" (tiers: ${known})`);
    });
    p.fallback.forEach((t, i) => {
      if (!p.tiers.includes(t)) {
        problems.push(
          `${prefix}/policies/${name}/fallback/${i}: "${t}" is not one of the policy's tiers (${p.tiers.join(', ')})`,
        );
      }
    });
    const spec = p.speculative;
    if (spec !== undefined) {
      const at = `${prefix}/policies/${name}/speculative`;
      if (!tiers.has(spec.draft))
        problems.push(`${at}/draft: no tier named "${spec.draft}" (tiers: ${known})`);
      if (!tiers.has(spec.verify))
        problems.push(`${at}/verify: no tier named "${spec.verify}" (tiers: ${known})`);
      else if (!p.tiers.includes(spec.verify))
        problems.push(
          `${at}/verify: "${spec.verify}" is not one of the policy's tiers (${p.tiers.join(', ')})`,
        );
      if (spec.draft === spec.verify)
        problems.push(`${at}: draft and verify are the same tier "${spec.draft}"`);
      if (spec.maxK !== undefined && spec.maxK < spec.k)
        problems.push(`${at}/maxK: ${spec.maxK} is below k (${spec.k})`);
    }
    const cascade = p.cascade;
    if (cascade !== undefined) {
      const at = `${prefix}/policies/${name}/cascade`;
      for (const field of ['first', 'then'] as const) {
        const t = cascade[field];
        if (!tiers.has(t)) problems.push(`${at}/${field}: no tier named "${t}" (tiers: ${known})`);
        else if (field === 'then' && !p.tiers.includes(t))
          problems.push(`${at}/then: "${t}" is not one of the policy's tiers (${p.tiers.join(', ')})`);
      }
      if ((cascade.minMeanLogprob === undefined) === (cascade.minMargin === undefined))
        problems.push(`${at}: give exactly one confidence threshold, minMeanLogprob or minMargin`);
      if (cascade.first === cascade.then)
        problems.push(`${at}: first and then are the same tier "${cascade.first}"`);
      if (spec !== undefined)
        problems.push(
          `${at}: a policy either speculates or cascades, not both (remove one of speculative, cascade)`,
        );
    }
    for (const t of Object.keys(p.maxLoad)) {
      if (!p.tiers.includes(t))
        problems.push(
          `${prefix}/policies/${name}/maxLoad/${t}: not one of the policy's tiers (${p.tiers.join(', ')})`,
        );
    }
    for (const t of Object.keys(p.costPer1kTokens)) {
      if (!p.tiers.includes(t))
        problems.push(`${prefix}/policies/${name}/costPer1kTokens/${t}: not one of the policy's tiers`);
    }
  }
  if (routing.defaultPolicy !== undefined) policyRef(`${prefix}/defaultPolicy`, routing.defaultPolicy);
  for (const [model, name] of Object.entries(routing.byModel)) policyRef(`${prefix}/byModel/${model}`, name);
  for (const [key, name] of Object.entries(routing.byApiKey)) policyRef(`${prefix}/byApiKey/${key}`, name);
  for (const t of Object.keys(routing.profiles)) {
    // A speculative pair's prior is named "draft>verify" (docs/speculative.md).
    const pair = t.split('>');
    if (pair.length === 2 && pair.every((n) => tiers.has(n))) continue;
    if (!tiers.has(t)) problems.push(`${prefix}/profiles/${t}: no tier named "${t}" (tiers: ${known})`);
  }
  return problems;
}
