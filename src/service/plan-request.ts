import type { Gateway } from '../gateway/gateway.js';
import { GatewayError } from '../errors/gateway-error.js';
import { budgetsNotApplied, type RouteQuestion } from '../routing/decide.js';
import type { RoutePlan } from '../routing/plan.js';
import { chatTokens } from '../text/chat-template.js';
import { encodePrompt, type ChatMessage } from '../text/tokenizer.js';
import type { GenerationInput, PromptInput } from './generation-input.js';

/** A request planned but not run: what explain shows and what an execution starts from. */
export interface PlannedRequest {
  readonly model: string;
  /** The model's configured tier (the `tier` of logs and metrics until routing chose). */
  readonly modelTier: string;
  readonly promptTokens: readonly number[];
  readonly question: RouteQuestion;
  readonly plan: RoutePlan;
  /** Why the request's own budgets were not applied (a pinned model or tier), else undefined. */
  readonly budgetsNotApplied: string | undefined;
}

/** The prompt's token ids: text tokenised once at the gateway, chat through the model's template. */
export function promptTokensOf(gateway: Gateway, prompt: PromptInput): readonly number[] {
  switch (prompt.kind) {
    case 'tokens':
      return prompt.tokens;
    case 'text':
      return encodePrompt(gateway.tokenizer, prompt.text);
    case 'messages':
      return chatPromptTokens(gateway, prompt.messages);
  }
}

/** The model's own template when it has one (config `chat.template: auto`), else a built-in one. */
export function chatPromptTokens(gateway: Gateway, messages: readonly ChatMessage[]): number[] {
  const choice = gateway.config.chat.template;
  if (choice === 'auto') {
    const native = gateway.tokenizer.renderNativeChat?.(messages);
    if (native !== undefined) return native;
  }
  return chatTokens(gateway.tokenizer, messages, choice === 'chatml' ? 'chatml' : 'plain');
}

/**
 * The planning entry of a generation (docs/architecture.md "A request's path", steps 1–3): the
 * served model, a pinned tier, the prompt's tokens and the router's plan. Nothing is admitted or
 * counted: explain (HTTP and gRPC) calls it as it is, an Execution before it admits.
 */
export function planRequest(
  gateway: Gateway,
  input: Pick<GenerationInput, 'model' | 'prompt' | 'maxTokens' | 'route' | 'caller'>,
  /** False for Explain: what the engine predicts, without speculation's exploration (engine.ts). */
  live = true,
): PlannedRequest {
  const served = gateway.getModel(input.model);
  if (served === undefined) {
    throw new GatewayError('not_found', `The model \`${input.model}\` does not exist.`, { param: 'model' });
  }
  const pinned = input.route.tier === undefined || input.route.tier === '' ? undefined : input.route.tier;
  if (pinned !== undefined && !gateway.tiers.has(pinned)) {
    const known = [...gateway.tiers.keys()].join(', ');
    throw new GatewayError('bad_request', `Unknown tier "${pinned}" in x-tiergate-tier (tiers: ${known}).`);
  }
  const promptTokens = promptTokensOf(gateway, input.prompt);
  const question: RouteQuestion = {
    model: served.name,
    modelTier: served.tier.name,
    tierOverride: pinned,
    apiKey: input.caller.apiKey,
    options: input.route,
    features: {
      promptTokens: promptTokens.length,
      maxTokens: input.maxTokens ?? gateway.config.limits.defaultMaxTokens,
    },
  };
  const plan = gateway.router.plan(question, live);
  return {
    model: served.name,
    modelTier: served.tier.name,
    promptTokens,
    question,
    plan,
    budgetsNotApplied: budgetsNotApplied(question, plan),
  };
}
