import { GatewayError } from '../../errors/gateway-error.js';
import { parseRouteOptions } from '../../routing/route-options.js';
import type { GenerationInput, PromptInput, RouteWishes } from '../../service/generation-input.js';
import type { ChatMessage } from '../../text/tokenizer.js';
import type { CallContext } from './call-context.js';
import type { GenerationOptionsMessage, RouteOptionsMessage } from './messages.js';

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'developer', 'tool']);

/** null/undefined (absent proto3 optional) → undefined. */
function given<T>(v: T | null | undefined): T | undefined {
  return v ?? undefined;
}

/** A completion's prompt: text (tokenised like HTTP's, by the service) or token ids. */
export function promptOf(input: {
  input?: string;
  prompt?: string;
  promptTokens?: { ids: number[] } | null;
}): PromptInput {
  if (input.input === 'promptTokens') return { kind: 'tokens', tokens: input.promptTokens?.ids ?? [] };
  if (input.input === 'prompt' && input.prompt !== undefined) return { kind: 'text', text: input.prompt };
  throw new GatewayError('bad_request', 'Give a prompt (text) or prompt_tokens.', { param: 'prompt' });
}

/** Chat messages, checked: at least one, each with a known role. */
export function messagesOf(messages: readonly { role: string; content: string }[]): PromptInput {
  if (messages.length === 0)
    throw new GatewayError('bad_request', 'messages must not be empty.', { param: 'messages' });
  const bad = messages.find((m) => !ROLES.has(m.role));
  if (bad !== undefined)
    throw new GatewayError('bad_request', `Unknown message role "${bad.role}".`, { param: 'messages' });
  return { kind: 'messages', messages: messages as readonly ChatMessage[] };
}

/** The routing wishes of a gRPC request, validated by the same parser as HTTP's `tiergate` field. */
export function routeWishesOf(route: RouteOptionsMessage | null | undefined): RouteWishes {
  const wishes: Record<string, unknown> = {};
  if (route?.policy) wishes.policy = route.policy;
  if (given(route?.latencyBudgetMs) !== undefined) wishes.latency_budget_ms = route?.latencyBudgetMs;
  if (given(route?.accuracyFloor) !== undefined) wishes.accuracy_floor = route?.accuracyFloor;
  const options = parseRouteOptions({ tiergate: wishes }, {});
  return {
    policy: options.policy,
    latencyBudgetMs: options.latencyBudgetMs,
    accuracyFloor: options.accuracyFloor,
    tier: route?.tier || undefined,
  };
}

/**
 * A gRPC completion or chat as the generation service's input: the same GenerationInput an
 * HTTP body becomes. The call's gRPC deadline is the request's deadline; its cancellation, the
 * execution's signal. `stream` says whether the client reads chunks (CompleteStream, ChatStream).
 */
export function generationInputOf(
  ctx: CallContext,
  model: string,
  prompt: PromptInput,
  options: GenerationOptionsMessage | null | undefined,
  stream: boolean,
): GenerationInput {
  const o = options ?? { stop: [] };
  return {
    model,
    prompt,
    maxTokens: given(o.maxTokens),
    maxTokensParam: 'max_tokens',
    temperature: given(o.temperature),
    topP: given(o.topP),
    topK: given(o.topK),
    seed: given(o.seed),
    stop: o.stop.length === 0 ? undefined : o.stop,
    n: given(o.n),
    logprobs: undefined,
    stream,
    route: routeWishesOf(o.route),
    caller: {
      requestId: ctx.requestId,
      apiKey: ctx.apiKey,
      arrivedAt: ctx.startedAt,
      deadline: ctx.deadline,
      traceContext: ctx.traceContext,
    },
    signal: ctx.signal,
  };
}
