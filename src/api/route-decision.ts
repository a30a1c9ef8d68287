import type { FastifyRequest } from 'fastify';
import type { Gateway, ServedModel } from '../gateway/gateway.js';
import type { MetricsService } from '../observability/metrics.js';
import { withAttempts, type GenerationRequest } from '../pipeline/types.js';
import type { RoutePlan } from '../routing/plan.js';
import { parseRouteOptions } from '../routing/route-options.js';
import type { RouteQuestion } from '../routing/router.js';
import { ApiError } from './errors.js';

/** Route decisions and budget misses, registered in the gateway's own registry (once per registry). */
const routingMetricsCache = new WeakMap<MetricsService, ReturnType<typeof createRoutingMetrics>>();
function routingMetrics(metrics: MetricsService): ReturnType<typeof createRoutingMetrics> {
  let m = routingMetricsCache.get(metrics);
  if (m === undefined) {
    m = createRoutingMetrics(metrics);
    routingMetricsCache.set(metrics, m);
  }
  return m;
}

function createRoutingMetrics(metrics: MetricsService) {
  return {
    decisions: metrics.seriesCounter({
      name: 'route_decisions_total',
      help: 'Routing decisions by policy, chosen tier and reason code.',
      labelNames: ['policy', 'tier', 'reason'],
    }),
    budgetMisses: metrics.counter({
      name: 'route_budget_misses_total',
      help: 'Requests that missed their latency budget or were served below their accuracy floor.',
      labelNames: ['policy', 'tier', 'budget'],
    }),
  };
}

/**
 * The plan routing made for a request, if any. Kept on the request's own context, not in a
 * WeakMap keyed by request: V8's young-generation GC keeps the values of a long-lived WeakMap
 * alive, which promoted every request's objects to the old generation.
 */
export function planOf(request: FastifyRequest): RoutePlan | undefined {
  return request.tiergate.plan;
}

/** The routing question of an OpenAI request: its options, key, override and features. */
export function routeQuestion(
  request: FastifyRequest,
  gateway: Gateway,
  served: ServedModel,
  promptTokens: number,
  maxTokens: number | null | undefined,
): RouteQuestion {
  const override = request.headers['x-tiergate-tier'];
  const modelTier = gateway.config.models[served.name]?.tier ?? served.tier.name;
  return {
    model: served.name,
    modelTier,
    tierOverride: typeof override === 'string' && override !== '' ? served.tier.name : undefined,
    apiKey: request.tiergate.apiKey,
    options: parseRouteOptions(request.body, request.headers),
    features: { promptTokens, maxTokens: maxTokens ?? gateway.config.limits.defaultMaxTokens },
  };
}

/**
 * Step 3 of DESIGN.md for an OpenAI request: asks the router for a plan, records it (headers,
 * summary line, metrics), refuses rejected plans and returns the served model on the first
 * attempt's tier. The executor takes the rest of the attempts from planOf(request).
 */
export function routeByPolicy(
  request: FastifyRequest,
  gateway: Gateway,
  served: ServedModel,
  promptTokens: readonly number[],
  maxTokens: number | null | undefined,
): ServedModel {
  const ctx = request.tiergate;
  const reply = ctx.reply;
  const decided = decideRoute(
    gateway,
    served,
    routeQuestion(request, gateway, served, promptTokens.length, maxTokens),
    ctx.startedAt,
    {
      onPlan: (plan) => {
        ctx.plan = plan;
        ctx.policy = plan.policy;
        ctx.routeReason = plan.code;
        void reply?.header('x-tiergate-policy', plan.policy);
        void reply?.header('x-tiergate-route-reason', headerSafe(plan.reason));
      },
      onTier: (tier) => {
        ctx.tier = tier;
        void reply?.header('x-tiergate-tier', tier);
      },
    },
  );
  // Run by the request's one 'close' listener (request-context.ts), however the request ends.
  ctx.onEnd = decided.done;
  return decided.served;
}

/**
 * Hands an engine plan's ordered attempts and per-attempt deadlines to the executor. Static and
 * override plans keep the resilience defaults (the tier, then its configured fallbacks): routing
 * did not choose there. The latency budget steers the choice and the attempt deadlines; the
 * request as a whole stays bounded by resilience.requestTimeoutMs, so a best-effort request
 * predicted over budget is not cut off at the budget.
 */
export function withPlan(gen: GenerationRequest, plan: RoutePlan | undefined): GenerationRequest {
  if (plan === undefined || plan.code === 'static' || plan.code === 'override') return gen;
  return withAttempts(gen, plan.attempts);
}

/** A routed request: its plan, the served model on the first attempt's tier, and its end. */
export interface RouteDecision {
  readonly plan: RoutePlan;
  readonly served: ServedModel;
  /** Call once when the request ends (however it ends): frees the router's slot, records budget misses. */
  readonly done: () => void;
}

/**
 * Step 3 of DESIGN.md, independent of the transport (HTTP above, gRPC in src/api/grpc/): asks
 * the router for a plan, counts the decision, refuses rejected plans and unready tiers, and
 * admits the request to the chosen tier. `onPlan` / `onTier` see the decision before any refusal.
 */
export function decideRoute(
  gateway: Gateway,
  served: ServedModel,
  question: RouteQuestion,
  startedAt: number,
  hooks: { onPlan?: (plan: RoutePlan) => void; onTier?: (tier: string) => void } = {},
): RouteDecision {
  const plan = gateway.router.plan(question);
  hooks.onPlan?.(plan);
  const first = plan.attempts[0];
  const m = routingMetrics(gateway.metrics);
  m.decisions.labels(plan.policy, first?.tier ?? 'none', plan.code).inc();
  if (plan.rejected !== undefined || first === undefined) {
    const reason = plan.rejected?.reason ?? 'no tier to route to';
    if (plan.code === 'unavailable')
      throw new ApiError('not_ready', `Cannot route the request: ${reason}.`, null, 5);
    throw new ApiError('route_infeasible', `Cannot meet the request's budgets: ${reason}.`, 'tiergate');
  }
  const tier = gateway.tiers.get(first.tier);
  if (tier === undefined) throw new ApiError('internal', `Routing chose an unknown tier "${first.tier}".`);
  hooks.onTier?.(tier.name);
  // The engine already skipped unready tiers; a static or override plan has not looked.
  const health = tier.health();
  if (!health.ready) {
    throw new ApiError('not_ready', `The model's tier is not ready: ${health.detail ?? 'unknown'}.`, null, 5);
  }
  const release = gateway.router.admit(tier.name);
  let ended = false;
  const done = (): void => {
    if (ended) return;
    ended = true;
    release();
    recordMisses(startedAt, plan, tier.name, gateway, m);
  };
  // (No spread of the per-request object: see src/pipeline/types.ts withAttempts.)
  return { plan, served: { name: served.name, tier, description: served.description }, done };
}

function recordMisses(
  startedAt: number,
  plan: RoutePlan,
  tier: string,
  gateway: Gateway,
  m: ReturnType<typeof routingMetrics>,
): void {
  if (plan.policy === 'none') return;
  const elapsedMs = performance.now() - startedAt;
  if (elapsedMs > plan.budget.latencyMs) m.budgetMisses.inc({ policy: plan.policy, tier, budget: 'latency' });
  const accuracy = gateway.router.profiles.profile(tier).accuracy;
  if (accuracy < plan.budget.accuracyFloor)
    m.budgetMisses.inc({ policy: plan.policy, tier, budget: 'accuracy' });
}

const VISIBLE_ASCII = /^[\x20-\x7e]*$/;

/** Header values must be visible ASCII; reasons are built from ASCII but tier names come from config. */
function headerSafe(text: string): string {
  if (text.length <= 200 && VISIBLE_ASCII.test(text)) return text;
  const ascii = text.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 200 ? `${ascii.slice(0, 197)}...` : ascii;
}
