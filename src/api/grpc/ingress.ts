import type { Gateway, ServedModel } from '../../gateway/gateway.js';
import type { GenerationRequest } from '../../pipeline/types.js';
import type { RouteOptions } from '../../routing/route-options.js';
import { parseRouteOptions } from '../../routing/route-options.js';
import type { RouteQuestion } from '../../routing/router.js';
import { encodePrompt, type ChatMessage } from '../../text/tokenizer.js';
import { ApiError } from '../errors.js';
import { chatPromptTokens } from '../openai/chat-completions.js';
import { generationFor } from '../openai/normalise.js';
import { decideRoute, withPlan, type RouteDecision } from '../route-decision.js';
import type { CallContext } from './call-context.js';
import type { GenerationOptionsMessage, RouteOptionsMessage } from './messages.js';

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'developer', 'tool']);

/** null/undefined (absent proto3 optional) → undefined. */
function given<T>(v: T | null | undefined): T | undefined {
  return v ?? undefined;
}

/** A completion's prompt: text (tokenised like HTTP's) or token ids. */
export function promptTokensOf(
  gateway: Gateway,
  input: { input?: string; prompt?: string; promptTokens?: { ids: number[] } | null },
): number[] {
  if (input.input === 'promptTokens') return [...(input.promptTokens?.ids ?? [])];
  if (input.input === 'prompt' && input.prompt !== undefined)
    return encodePrompt(gateway.tokenizer, input.prompt);
  throw new ApiError('invalid_request', 'Give a prompt (text) or prompt_tokens.', 'prompt');
}

export function chatTokensOf(
  gateway: Gateway,
  messages: readonly { role: string; content: string }[],
): number[] {
  if (messages.length === 0) throw new ApiError('invalid_request', 'messages must not be empty.', 'messages');
  const bad = messages.find((m) => !ROLES.has(m.role));
  if (bad !== undefined)
    throw new ApiError('invalid_request', `Unknown message role "${bad.role}".`, 'messages');
  return chatPromptTokens(gateway, messages as readonly ChatMessage[]);
}

/** The routing wishes of a gRPC request, validated by the HTTP API's own parser. */
function routeOptionsOf(route: RouteOptionsMessage | null | undefined): RouteOptions {
  const wishes: Record<string, unknown> = {};
  if (route?.policy) wishes.policy = route.policy;
  if (given(route?.latencyBudgetMs) !== undefined) wishes.latency_budget_ms = route?.latencyBudgetMs;
  if (given(route?.accuracyFloor) !== undefined) wishes.accuracy_floor = route?.accuracyFloor;
  return parseRouteOptions({ tiergate: wishes }, {});
}

/** Model lookup (with an optional tier override), refused while shutting down — as routeRequest on HTTP. */
export function servedModelOf(
  gateway: Gateway,
  ctx: CallContext,
  model: string,
  route: RouteOptionsMessage | null | undefined,
): ServedModel {
  const served = gateway.route(model, route?.tier || undefined);
  ctx.model = model;
  ctx.tier = served.tier.name;
  if (gateway.isClosing) throw new ApiError('not_ready', 'The server is shutting down.', null, 5);
  return served;
}

export function routeQuestionOf(
  gateway: Gateway,
  ctx: CallContext,
  served: ServedModel,
  route: RouteOptionsMessage | null | undefined,
  promptTokens: number,
  maxTokens: number | undefined,
): RouteQuestion {
  return {
    model: served.name,
    modelTier: gateway.config.models[served.name]?.tier ?? served.tier.name,
    tierOverride: route?.tier ? served.tier.name : undefined,
    apiKey: ctx.apiKey,
    options: routeOptionsOf(route),
    features: { promptTokens, maxTokens: maxTokens ?? gateway.config.limits.defaultMaxTokens },
  };
}

/**
 * Ingress + routing for a gRPC completion or chat (DESIGN.md steps 1–3) through the functions
 * the HTTP handlers use: decideRoute (policy engine, admission) and generationFor (limits,
 * budgets, sampling defaults). The call's gRPC deadline becomes the request's deadline.
 */
export function prepareGrpcGeneration(
  gateway: Gateway,
  ctx: CallContext,
  model: string,
  promptTokens: readonly number[],
  options: GenerationOptionsMessage | null | undefined,
): { gen: GenerationRequest; decision: RouteDecision } {
  const o = options ?? { stop: [] };
  const modelServed = servedModelOf(gateway, ctx, model, o.route);
  const maxTokens = given(o.maxTokens);
  const decision = decideRoute(
    gateway,
    modelServed,
    routeQuestionOf(gateway, ctx, modelServed, o.route, promptTokens.length, maxTokens),
    ctx.startedAt,
    {
      onPlan: (plan) => {
        ctx.policy = plan.policy;
        ctx.routeReason = plan.code;
      },
      onTier: (tier) => (ctx.tier = tier),
    },
  );
  try {
    const gen = generationFor(
      gateway,
      decision.served,
      {
        model,
        temperature: given(o.temperature),
        top_p: given(o.topP),
        top_k: given(o.topK),
        seed: given(o.seed),
        stop: o.stop,
        n: given(o.n),
      },
      promptTokens,
      { value: maxTokens, param: 'max_tokens' },
      { enabled: false, top: 0, param: 'top_logprobs' },
      { requestId: ctx.requestId, arrivedAt: ctx.startedAt },
    );
    ctx.promptTokens = gen.promptTokens.length;
    // The engine's attempts and deadlines go to the executor (withPlan: engine plans only).
    const planned = withPlan(gen, decision.plan);
    return { gen: ctx.deadline === undefined ? planned : { ...planned, deadline: ctx.deadline }, decision };
  } catch (err) {
    decision.done();
    throw err;
  }
}
