import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { ApiError } from './errors.js';

export type Scope = 'inference' | 'admin';

interface StoredKey {
  readonly name: string;
  readonly hash: Buffer;
  readonly scopes: readonly Scope[];
}

/**
 * API keys (`Authorization: Bearer <key>`). Only SHA-256 hashes are held in memory; a presented
 * key is hashed and compared against every stored hash with timingSafeEqual, without stopping
 * at the first match, so timing reveals neither the key nor which entry matched.
 * /healthz and /readyz stay open for probes; /metrics and /admin/* need the admin scope.
 */
export function installAuth(app: FastifyInstance, config: Config): void {
  if (!config.auth.enabled) return;
  const verify = keyVerifier(config);
  app.addHook('onRequest', async (request) => {
    const scope = requiredScope(request.url);
    if (scope === undefined) return;
    const name = verify(presentedKey(request.headers.authorization), scope, request.url);
    request.tiergate.apiKey = name;
    request.log.debug({ apiKey: name }, 'authenticated');
  });
}

/**
 * The key store shared by the HTTP and gRPC APIs: returns a function that checks a presented key
 * (undefined: none given) for a scope and returns the key's name, or throws the ApiError to answer.
 */
export function keyVerifier(
  config: Config,
): (key: string | undefined, scope: Scope, resource: string) => string {
  const keys: StoredKey[] = config.auth.keys.flatMap((k) =>
    k.sha256 === undefined ? [] : [{ name: k.name, hash: Buffer.from(k.sha256, 'hex'), scopes: k.scopes }],
  );
  return (key, scope, resource) => {
    if (key === undefined) {
      throw new ApiError(
        'invalid_api_key',
        "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_KEY).",
      );
    }
    const hash = createHash('sha256').update(key, 'utf8').digest();
    let match: StoredKey | undefined;
    for (const k of keys) {
      if (timingSafeEqual(hash, k.hash) && match === undefined) match = k;
    }
    if (match === undefined) throw new ApiError('invalid_api_key', 'Incorrect API key provided.');
    if (!match.scopes.includes(scope)) {
      throw new ApiError(
        'missing_scope',
        `This API key lacks the "${scope}" scope required for ${resource}.`,
      );
    }
    return match.name;
  };
}

function requiredScope(url: string): Scope | undefined {
  const path = url.split('?', 1)[0] ?? url;
  if (path === '/metrics' || path.startsWith('/admin/')) return 'admin';
  if (path.startsWith('/v1/')) return 'inference';
  return undefined;
}

/** The key of an `Authorization: Bearer <key>` header (HTTP header or gRPC metadata). */
export function presentedKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
}
