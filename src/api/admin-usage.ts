import type { FastifyInstance } from 'fastify';
import type { GenerationService } from '../service/generation-service.js';

/**
 * GET /admin/usage (admin scope): each key's usage on this replica since it started (requests,
 * refusals by limit, tokens by type, spend, truncations) and, per configured limit, the window
 * now as the store holds it (with Redis: every replica's sum). docs/governance.md "Usage".
 */
export function adminUsageRoutes(app: FastifyInstance, service: GenerationService): void {
  app.get('/admin/usage', async () => {
    const limits = service.limits;
    const totals = limits.usage.snapshot();
    const names = new Set([...limits.keys(), ...Object.keys(totals)]);
    const keys: Record<string, unknown> = {};
    let storeError: string | undefined;
    for (const name of [...names].sort()) {
      let windows: Record<string, unknown> | undefined;
      try {
        windows = await limits.windows(name);
      } catch (err) {
        storeError = err instanceof Error ? err.message : String(err);
      }
      keys[name] = {
        limits: limits.limitsOf(name),
        running: limits.running(name),
        windows,
        usage: totals[name] ?? null,
      };
    }
    return { store: { kind: limits.store.kind, up: limits.store.up, error: storeError }, keys };
  });
}
