import type { Gateway } from '../../gateway/gateway.js';
import type { CallContext } from './call-context.js';
import { chatTokensOf, promptTokensOf, routeQuestionOf, servedModelOf } from './ingress.js';
import type { ExplainRequestMessage } from './messages.js';

/**
 * The routing decision a request would get (the policy engine's RoutePlan with its per-tier
 * reason trace), computed by the same Router.plan() as a real request, without running a model,
 * admitting it or counting it in the route metrics.
 */
export function explain(gateway: Gateway, ctx: CallContext, r: ExplainRequestMessage) {
  const served = servedModelOf(gateway, ctx, r.model, r.route);
  const tokens = r.messages.length > 0 ? chatTokensOf(gateway, r.messages) : promptTokensOf(gateway, r);
  const plan = gateway.router.plan(
    routeQuestionOf(gateway, ctx, served, r.route, tokens.length, r.maxTokens ?? undefined),
  );
  ctx.policy = plan.policy;
  ctx.routeReason = plan.code;
  return {
    policy: plan.policy,
    objective: plan.objective,
    code: plan.code,
    reason: plan.reason,
    attempts: plan.attempts.map((a) => ({ tier: a.tier, deadlineMs: a.deadlineMs })),
    rejected: plan.rejected?.reason ?? '',
    bestEffort: plan.bestEffort,
    latencyBudgetMs: plan.budget.latencyMs,
    accuracyFloor: plan.budget.accuracyFloor,
    trace: plan.trace.map((v) => ({
      tier: v.tier,
      ttftMs: v.ttftMs,
      latencyMs: v.latencyMs,
      queueMs: v.queueMs,
      accuracy: v.accuracy,
      cost: v.cost,
      available: v.available,
      feasible: v.feasible,
      chosen: v.chosen,
      skip: v.skip ?? '',
      why: v.why,
    })),
    promptTokens: tokens.length,
  };
}
