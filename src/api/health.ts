import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../gateway/gateway.js';

/**
 * /healthz (process alive), /readyz (tiers loaded and healthy), /metrics, /admin/tiers.
 * /healthz and /readyz are open (src/api/scopes.ts); with API keys on, /readyz says only ready or
 * not per tier, since a tier's detail can name processes, signals and addresses (/admin/tiers
 * has it).
 */
export function healthRoutes(app: FastifyInstance, gateway: Gateway): void {
  const detailed = !gateway.config.auth.enabled;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = gateway.readiness();
    const tiers = detailed
      ? readiness.tiers
      : Object.fromEntries(Object.entries(readiness.tiers).map(([name, t]) => [name, { ready: t.ready }]));
    return reply
      .status(readiness.ready ? 200 : 503)
      .send({ status: readiness.ready ? 'ready' : 'not ready', ready: readiness.ready, tiers });
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await gateway.metrics.render();
    return reply.type(gateway.metrics.contentType).send(text);
  });
  app.get('/admin/tiers', async () => ({
    tiers: [...gateway.tiers.values()].map((t) => ({ ...t.info(), health: t.health() })),
  }));
}
