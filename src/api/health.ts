import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../gateway/gateway.js';

/** /healthz (process alive), /readyz (tiers loaded and healthy), /metrics, /admin/tiers. */
export function healthRoutes(app: FastifyInstance, gateway: Gateway): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = gateway.readiness();
    return reply
      .status(readiness.ready ? 200 : 503)
      .send({ status: readiness.ready ? 'ready' : 'not ready', ...readiness });
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await gateway.metrics.render();
    return reply.type(gateway.metrics.contentType).send(text);
  });
  app.get('/admin/tiers', async () => ({
    tiers: [...gateway.tiers.values()].map((t) => ({ ...t.info(), health: t.health() })),
  }));
}
