import type { FastifyRequest } from 'fastify';
import type { Gateway, ServedModel } from '../../gateway/gateway.js';
import { budgetFor } from '../../pipeline/prepare.js';
import type { GenerationRequest } from '../../pipeline/types.js';
import { ApiError } from '../errors.js';
import { planOf, routeByPolicy, withPlan } from '../route-decision.js';

/** Fields shared by completions and chat, after schema validation. */
export interface CommonFields {
  readonly model: string;
  readonly temperature?: number | null | undefined;
  readonly top_p?: number | null | undefined;
  readonly top_k?: number | null | undefined;
  readonly seed?: number | null | undefined;
  readonly stop?: string | string[] | null | undefined;
  readonly n?: number | null | undefined;
}

export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Resolves the model (and an x-tiergate-tier override), refuses work while shutting down. The
 * tier's readiness is checked once routing has chosen it (routeByPolicy in buildGeneration): a
 * policy may route around a tier that is not ready.
 */
export function routeRequest(request: FastifyRequest, gateway: Gateway, model: string): ServedModel {
  const served = gateway.route(model, headerValue(request, 'x-tiergate-tier'));
  request.tiergate.model = model;
  request.tiergate.tier = served.tier.name;
  if (gateway.isClosing) throw new ApiError('not_ready', 'The server is shutting down.', null, 5);
  return served;
}

/** Ingress → GenerationRequest (DESIGN.md step 1–2) for either endpoint. */
export function buildGeneration(
  request: FastifyRequest,
  gateway: Gateway,
  modelServed: ServedModel,
  fields: CommonFields,
  promptTokens: readonly number[],
  maxTokens: { value: number | null | undefined; param: string },
  logprobs: { enabled: boolean; top: number; param: string },
): GenerationRequest {
  // The policy engine needs the prompt's length, so routing happens here, after tokenisation.
  const served = routeByPolicy(request, gateway, modelServed, promptTokens, maxTokens.value);
  const gen = generationFor(gateway, served, fields, promptTokens, maxTokens, logprobs, {
    requestId: request.id,
    arrivedAt: request.tiergate.startedAt,
  });
  return withPlan(gen, planOf(request));
}

/**
 * The transport-independent part of ingress (limits, budget, sampling defaults) on an already
 * routed tier: the HTTP handlers and the gRPC API (src/api/grpc/) share it.
 */
export function generationFor(
  gateway: Gateway,
  served: ServedModel,
  fields: CommonFields,
  promptTokens: readonly number[],
  maxTokens: { value: number | null | undefined; param: string },
  logprobs: { enabled: boolean; top: number; param: string },
  ids: { readonly requestId: string; readonly arrivedAt: number },
): GenerationRequest {
  const { limits } = gateway.config;
  const stop = fields.stop == null ? [] : typeof fields.stop === 'string' ? [fields.stop] : fields.stop;
  if (stop.length > limits.maxStopSequences) {
    throw new ApiError(
      'invalid_request',
      `At most ${limits.maxStopSequences} stop sequences are allowed.`,
      'stop',
    );
  }
  if (stop.some((s) => s === ''))
    throw new ApiError('invalid_request', 'Stop sequences must not be empty.', 'stop');
  const n = fields.n ?? 1;
  if (n > limits.maxChoices) {
    throw new ApiError('invalid_request', `'n' must be at most ${limits.maxChoices} (got ${n}).`, 'n');
  }
  if (logprobs.top > limits.maxTopLogprobs) {
    throw new ApiError(
      'invalid_request',
      `'${logprobs.param}' must be at most ${limits.maxTopLogprobs}.`,
      logprobs.param,
    );
  }
  const budget = budgetFor(
    gateway.config,
    served.tier,
    gateway.tokenizer,
    promptTokens,
    maxTokens.value,
    maxTokens.param,
  );
  return {
    requestId: ids.requestId,
    model: fields.model,
    tier: served.tier.name,
    promptTokens,
    maxTokens: budget.maxTokens,
    sampling: {
      // OpenAI's default temperature and top_p are 1.
      temperature: fields.temperature ?? 1,
      topP: fields.top_p ?? 1,
      topK: fields.top_k ?? 0,
      seed: fields.seed ?? undefined,
    },
    stop,
    n,
    logprobs: logprobs.enabled,
    topLogprobs: logprobs.top,
    arrivedAt: ids.arrivedAt,
  };
}
