import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors/gateway-error.js';
import type { GenerationInput } from '../service/generation-input.js';
import type { GenerationService } from '../service/generation-service.js';
import { parseRoutingDocument } from '../routing/policy-file.js';
import { simulate } from '../routing/simulate.js';
import { TrafficRecordSchema, type TrafficRecord } from '../routing/traffic.js';
import { Value } from '@sinclair/typebox/value';
import { generationInput, promptInput, toMessages } from './openai/normalise.js';
import { ChatBodySchema, CompletionBodySchema, parseBody } from './openai/request-schemas.js';

/**
 * POST /v1/route/explain: the plan a completions or chat body would get, without running it
 * (nothing is admitted or counted). POST /admin/route/simulate: a candidate routing document
 * replayed over posted traffic with the gateway's live tier profiles (admin scope when auth is on).
 */
export function routeExplainRoutes(app: FastifyInstance, service: GenerationService): void {
  const { gateway } = service;
  app.post('/v1/route/explain', async (request) => {
    const body = request.body as Record<string, unknown> | null;
    const isChat = typeof body === 'object' && body !== null && 'messages' in body;
    let input: GenerationInput;
    if (isChat) {
      const chat = parseBody(ChatBodySchema, body);
      input = generationInput(
        request,
        chat,
        { kind: 'messages', messages: toMessages(chat.messages) },
        { value: chat.max_completion_tokens ?? chat.max_tokens, param: 'max_tokens' },
        undefined,
      );
    } else {
      const completion = parseBody(CompletionBodySchema, body);
      input = generationInput(
        request,
        completion,
        promptInput(completion.prompt),
        { value: completion.max_tokens, param: 'max_tokens' },
        undefined,
      );
    }
    // The same planning entry a generation uses (src/service/plan-request.ts), run no further.
    const explained = service.explain(input);
    return {
      object: 'route.plan',
      model: input.model,
      features: explained.question.features,
      plan: explained.plan,
      budgetsNotApplied: explained.budgetsNotApplied,
      profiles: explained.profiles,
      tiers: explained.states,
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
      throw new GatewayError('bad_request', 'The body must be { routing: {...}, traffic: [ {...}, ... ] }.', {
        param: 'traffic',
      });
    }
    let routing;
    try {
      routing = parseRoutingDocument(
        body.routing ?? gateway.config.routing,
        [...gateway.tiers.keys()],
        'routing',
      );
    } catch (err) {
      throw new GatewayError('bad_request', (err as Error).message, { param: 'routing' });
    }
    const traffic = body.traffic.map((r: unknown, i: number): TrafficRecord => {
      const error = Value.Errors(TrafficRecordSchema, r).First();
      if (error !== undefined) {
        throw new GatewayError('bad_request', `traffic[${i}]${error.path}: ${error.message}`, {
          param: `traffic[${i}]`,
        });
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
