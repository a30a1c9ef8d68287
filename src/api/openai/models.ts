import type { FastifyInstance } from 'fastify';
import type { Gateway, ServedModel } from '../../gateway/gateway.js';
import { ApiError } from '../errors.js';

/** GET /v1/models and /v1/models/{id} (https://platform.openai.com/docs/api-reference/models). */
export function modelsRoutes(app: FastifyInstance, gateway: Gateway): void {
  const toModel = (m: ServedModel) => ({
    id: m.name,
    object: 'model',
    created: gateway.createdAt,
    owned_by: 'tiergate',
  });
  app.get('/v1/models', async () => ({ object: 'list', data: gateway.listModels().map(toModel) }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const model = gateway.getModel(request.params.id);
    if (model === undefined) {
      throw new ApiError('not_found', `The model '${request.params.id}' does not exist`, 'model');
    }
    return toModel(model);
  });
}
