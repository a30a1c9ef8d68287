import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import { parseRouteOptions } from '../../routing/route-options.js';
import type { GenerationInput, PromptInput } from '../../service/generation-input.js';
import type { ChatMessage } from '../../text/tokenizer.js';
import { traceContextOf } from '../trace-context.js';
import type { ChatBody } from './request-schemas.js';

/** Fields shared by completions and chat, after schema validation. */
export interface CommonFields {
  readonly model: string;
  readonly temperature?: number | null | undefined;
  readonly top_p?: number | null | undefined;
  readonly top_k?: number | null | undefined;
  readonly seed?: number | null | undefined;
  readonly stop?: string | string[] | null | undefined;
  readonly n?: number | null | undefined;
  readonly stream?: boolean | null | undefined;
}

export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * An OpenAI body as the generation service's input (docs/architecture.md, step 1): the HTTP
 * side's whole part in a request's meaning. Routing wishes come from the `tiergate` body field
 * and the `x-tiergate-*` headers (the body wins); `x-tiergate-tier` pins a tier.
 */
export function generationInput(
  request: FastifyRequest,
  fields: CommonFields,
  prompt: PromptInput,
  maxTokens: { readonly value: number | null | undefined; readonly param: string },
  logprobs: GenerationInput['logprobs'],
): GenerationInput {
  const stop =
    fields.stop == null ? undefined : typeof fields.stop === 'string' ? [fields.stop] : fields.stop;
  const ctx = request.tiergate;
  const options = parseRouteOptions(request.body, request.headers);
  return {
    model: fields.model,
    prompt,
    maxTokens: maxTokens.value,
    maxTokensParam: maxTokens.param,
    temperature: fields.temperature,
    topP: fields.top_p,
    topK: fields.top_k,
    seed: fields.seed,
    stop,
    n: fields.n,
    logprobs,
    stream: fields.stream === true,
    route: {
      policy: options.policy,
      latencyBudgetMs: options.latencyBudgetMs,
      accuracyFloor: options.accuracyFloor,
      tier: headerValue(request, 'x-tiergate-tier'),
    },
    caller: {
      requestId: request.id,
      apiKey: ctx.apiKey,
      arrivedAt: ctx.startedAt,
      traceContext: traceContextOf({
        traceparent: request.headers.traceparent,
        tracestate: request.headers.tracestate,
      }),
    },
  };
}

/** A completions prompt as the service's input: one prompt per request (text or token ids). */
export function promptInput(prompt: string | string[] | number[] | number[][]): PromptInput {
  const first = Array.isArray(prompt) ? prompt[0] : prompt;
  if (typeof first === 'string') return { kind: 'text', text: first };
  if (typeof first === 'number') return { kind: 'tokens', tokens: prompt as number[] };
  if (Array.isArray(first)) return { kind: 'tokens', tokens: first };
  throw new GatewayError('bad_request', 'The prompt must be a string or an array of token ids.', {
    param: 'prompt',
  });
}

/** Chat messages with text-part content joined into one string. */
export function toMessages(messages: ChatBody['messages']): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role,
    content:
      m.content == null
        ? ''
        : typeof m.content === 'string'
          ? m.content
          : m.content.map((p) => p.text).join(''),
  }));
}
