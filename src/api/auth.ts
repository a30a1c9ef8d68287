import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { ApiError } from './errors.js';
import { HTTP_ROUTE_ACCESS, httpRouteAccess, type Access, type Scope } from './scopes.js';

export type { Access, Scope } from './scopes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs when API keys are on, from src/api/scopes.ts (set at registration). */
    access?: Access;
  }
}

/** Why a request was refused; logged in its summary line (never the key itself). */
export type Denial = 'no_key' | 'unknown_key' | 'missing_scope';

/** The outcome of checking a presented key. */
export interface KeyCheck {
  /** Name of the configured key that matched (what logs show instead of the key). */
  readonly key: string | undefined;
  /** Undefined: allowed. */
  readonly denied: Denial | undefined;
}

/** A route as registered, with the access it was given (for tests and start-up checks). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly access: Access;
}

interface StoredKey {
  readonly name: string;
  readonly hash: Buffer;
  readonly scopes: readonly Scope[];
}

const routesByApp = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route registered on an app built with installAuth, in registration order. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routesByApp.get(app) ?? [];
}

/**
 * Route access and API keys (`Authorization: Bearer <key>`). Installed before any route: each
 * route gets its access from src/api/scopes.ts as it is registered (a route missing there makes
 * registration throw, so the app does not start), and a request is checked against the access of
 * the route fastify matched, whatever its URL looked like. An unknown route needs a valid key of
 * any scope (then 404), so a caller without one cannot tell which paths exist.
 *
 * Only SHA-256 hashes are held in memory; a presented key is hashed and compared against every
 * stored hash with timingSafeEqual, without stopping at the first match, so timing reveals
 * neither the key nor which entry matched.
 */
export function installAuth(app: FastifyInstance, config: Config): void {
  const routes: RegisteredRoute[] = [];
  routesByApp.set(app, routes);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const found = new Set(methods.map((m) => httpRouteAccess(m, route.url)));
    const access = found.size === 1 ? [...found][0] : undefined;
    if (access === undefined) {
      throw new Error(
        `route ${methods.join(',')} ${route.url} has no single access in src/api/scopes.ts; every route must be listed there`,
      );
    }
    route.config = { ...route.config, access };
    for (const method of methods) routes.push({ method, url: route.url, access });
  });
  // The table and the routes must agree both ways: a stale entry would hide a missing route.
  app.addHook('onReady', (done) => {
    const missing = Object.keys(HTTP_ROUTE_ACCESS).filter(
      (entry) => !routes.some((r) => `${r.method} ${r.url}` === entry),
    );
    done(
      missing.length === 0
        ? undefined
        : new Error(`src/api/scopes.ts lists unregistered routes: ${missing.join(', ')}`),
    );
  });
  if (!config.auth.enabled) return;
  const check = keyVerifier(config);
  // A callback hook, not an async one: no promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    // A matched route always has its access (see onRoute); admin is the safe default regardless.
    const access = request.is404 ? 'any' : (request.routeOptions.config.access ?? 'admin');
    if (access === 'open') {
      done();
      return;
    }
    const scope = access === 'any' ? undefined : access;
    const result = check(presentedKey(request.headers.authorization), scope);
    const ctx = request.tiergate;
    ctx.apiKey = result.key;
    ctx.denied = result.denied;
    if (result.denied === undefined) done();
    else done(denialError(result.denied, scope, `${request.method} ${request.routeOptions.url ?? ''}`));
  });
}

/**
 * The key store shared by the HTTP and gRPC APIs: returns a function that checks a presented key
 * (undefined: none given) for a scope (undefined: any valid key will do).
 */
export function keyVerifier(config: Config): (key: string | undefined, scope: Scope | undefined) => KeyCheck {
  const keys: StoredKey[] = config.auth.keys.flatMap((k) =>
    k.sha256 === undefined ? [] : [{ name: k.name, hash: Buffer.from(k.sha256, 'hex'), scopes: k.scopes }],
  );
  return (key, scope) => {
    if (key === undefined) return { key: undefined, denied: 'no_key' };
    const hash = createHash('sha256').update(key, 'utf8').digest();
    let match: StoredKey | undefined;
    for (const k of keys) {
      if (timingSafeEqual(hash, k.hash) && match === undefined) match = k;
    }
    if (match === undefined) return { key: undefined, denied: 'unknown_key' };
    if (scope !== undefined && !match.scopes.includes(scope))
      return { key: match.name, denied: 'missing_scope' };
    return { key: match.name, denied: undefined };
  };
}

/** The ApiError (401 or 403) a refused request is answered with. */
export function denialError(denied: Denial, scope: Scope | undefined, resource: string): ApiError {
  switch (denied) {
    case 'no_key':
      return new ApiError(
        'invalid_api_key',
        "You didn't provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_KEY).",
      );
    case 'unknown_key':
      return new ApiError('invalid_api_key', 'Incorrect API key provided.');
    case 'missing_scope':
      return new ApiError(
        'missing_scope',
        `This API key lacks the "${scope ?? ''}" scope required for ${resource}.`,
      );
  }
}

/** The key of an `Authorization: Bearer <key>` header (HTTP header or gRPC metadata). */
export function presentedKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
}
