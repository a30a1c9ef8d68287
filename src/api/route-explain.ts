import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../gateway/gateway.js';
import { parseRoutingDocument } from '../routing/policy-file.js';
import { simulate } from '../routing/simulate.js';
import { TrafficRecordSchema, type TrafficRecord } from '../routing/traffic.js';
import { Value } from '@sinclair/typebox/value';
import { ApiError } from './errors.js';
import { chatPromptTokens, toMessages } from './openai/chat-completions.js';
import { promptToTokens } from './openai/completions.js';
import { headerValue } from './openai/normalise.js';
import { ChatBodySchema, CompletionBodySchema, parseBody } from './openai/request-schemas.js';
import { routeQuestion } from './route-decision.js';

/**
 * POST /v1/route/explain: the plan a completions or chat body would get, without running it
 * (nothing is admitted or counted). POST /admin/route/simulate: a candidate routing document
 * replayed over posted traffic with the gateway's live tier profiles (admin scope when auth is on).
 */
export function routeExplainRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.post('/v1/route/explain', async (request) => {
    const body = request.body as Record<string, unknown> | null;
    const isChat = typeof body === 'object' && body !== null && 'messages' in body;
    let model: string;
    let promptTokens: readonly number[];
    let maxTokens: number | null | undefined;
    if (isChat) {
      const chat = parseBody(ChatBodySchema, body);
      model = chat.model;
      promptTokens = chatPromptTokens(gateway, toMessages(chat.messages));
      maxTokens = chat.max_completion_tokens ?? chat.max_tokens;
    } else {
      const completion = parseBody(CompletionBodySchema, body);
      model = completion.model;
      promptTokens = promptToTokens(gateway, completion.prompt);
      maxTokens = completion.max_tokens;
    }
    const served = gateway.route(model, headerValue(request, 'x-tiergate-tier'));
    const question = routeQuestion(request, gateway, served, promptTokens.length, maxTokens);
    const plan = gateway.router.plan(question);
    return {
      object: 'route.plan',
      model,
      features: question.features,
      plan,
      profiles: gateway.router.snapshot(),
      tiers: gateway.router.states(),
    };
  });

  app.post('/admin/route/simulate', async (request) => {
    const body = request.body as { routing?: unknown; traffic?: unknown } | null;
    if (
      typeof body !== 'object' ||
      body === null ||
      !Array.isArray(body.traffic) ||
      body.traffic.length === 0
    ) {
      throw new ApiError(
        'invalid_request',
        'The body must be { routing: {...}, traffic: [ {...}, ... ] }.',
        'traffic',
      );
    }
    let routing;
    try {
      routing = parseRoutingDocument(
        body.routing ?? gateway.config.routing,
        [...gateway.tiers.keys()],
        'routing',
      );
    } catch (err) {
      throw new ApiError('invalid_request', (err as Error).message, 'routing');
    }
    const traffic = body.traffic.map((r: unknown, i: number): TrafficRecord => {
      const error = Value.Errors(TrafficRecordSchema, r).First();
      if (error !== undefined) {
        throw new ApiError(
          'invalid_request',
          `traffic[${i}]${error.path}: ${error.message}`,
          `traffic[${i}]`,
        );
      }
      return r as TrafficRecord;
    });
    const modelTiers = Object.fromEntries(Object.entries(gateway.config.models).map(([m, s]) => [m, s.tier]));
    return simulate({
      routing,
      traffic,
      profiles: gateway.router.snapshot(),
      modelTiers,
      defaultModel: Object.keys(gateway.config.models)[0] ?? '',
    });
  });
}
