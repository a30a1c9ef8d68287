import type { GenerationService } from '../../service/generation-service.js';
import type { CallContext } from './call-context.js';
import { messagesOf, promptOf, routeWishesOf } from './ingress.js';
import type { ExplainRequestMessage } from './messages.js';

/**
 * The routing decision a request would get (the policy engine's RoutePlan with its per-tier
 * reason trace), from the service's planning entry that a real request goes through, without
 * running a model, admitting it or counting it in the route metrics.
 */
export function explain(service: GenerationService, ctx: CallContext, r: ExplainRequestMessage) {
  ctx.model = r.model;
  const { plan, promptTokens } = service.explain({
    model: r.model,
    prompt: r.messages.length > 0 ? messagesOf(r.messages) : promptOf(r),
    maxTokens: r.maxTokens ?? undefined,
    route: routeWishesOf(r.route),
    caller: { requestId: ctx.requestId, apiKey: ctx.apiKey, arrivedAt: ctx.startedAt },
  });
  return {
    policy: plan.policy,
    objective: plan.objective,
    code: plan.code,
    reason: plan.reason,
    attempts: plan.attempts.map((a) => ({
      tier: a.tier,
      deadlineMs: a.deadlineMs,
      predictedMs: a.predictedMs,
    })),
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
    promptTokens: promptTokens.length,
  };
}
