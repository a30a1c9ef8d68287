/**
 * What every HTTP route and every gRPC method needs when API keys are on, in one table. The auth
 * checks read it for the route fastify matched (src/api/auth.ts) and for the method grpc-js
 * dispatched (src/api/grpc/guard.ts), never for the URL or path string a client sent. A route or
 * method that is not listed here stops start-up, so nothing can be served open by accident.
 */

/** A key's scope (`auth.keys[].scopes`). */
export type Scope = 'inference' | 'admin';

/** What a route needs: no key at all (`open`), or a key with that scope. */
export type Access = 'open' | Scope;

/**
 * HTTP routes, keyed `METHOD url` as registered with fastify. A HEAD route (fastify adds one for
 * every GET) needs what its GET needs.
 */
export const HTTP_ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  // Probes: the only open routes (/readyz says no more than ready or not per tier when keys are on).
  'GET /healthz': 'open',
  'GET /readyz': 'open',
  'GET /metrics': 'admin',
  'GET /admin/tiers': 'admin',
  'POST /admin/route/simulate': 'admin',
  'GET /admin/usage': 'admin',
  'GET /v1/models': 'inference',
  'GET /v1/models/:id': 'inference',
  'POST /v1/completions': 'inference',
  'POST /v1/chat/completions': 'inference',
  'POST /v1/route/explain': 'inference',
};

/** gRPC methods of the gateway's server, keyed by the path grpc-js dispatches on. */
export const GRPC_METHOD_ACCESS: Readonly<Record<string, Access>> = {
  '/tiergate.v1.Gateway/Complete': 'inference',
  '/tiergate.v1.Gateway/CompleteStream': 'inference',
  '/tiergate.v1.Gateway/Chat': 'inference',
  '/tiergate.v1.Gateway/ChatStream': 'inference',
  '/tiergate.v1.Gateway/ListModels': 'inference',
  '/tiergate.v1.Gateway/Explain': 'inference',
  // The standard health service, like /healthz and /readyz: SERVING or NOT_SERVING, nothing more.
  '/grpc.health.v1.Health/Check': 'open',
  '/grpc.health.v1.Health/Watch': 'open',
};

/** The access of an HTTP route, or undefined when the table does not list it. */
export function httpRouteAccess(method: string, url: string): Access | undefined {
  const entry = (m: string): Access | undefined =>
    Object.hasOwn(HTTP_ROUTE_ACCESS, `${m} ${url}`) ? HTTP_ROUTE_ACCESS[`${m} ${url}`] : undefined;
  return entry(method) ?? (method === 'HEAD' ? entry('GET') : undefined);
}

/** The access of a gRPC method path (`/package.Service/Method`), or undefined when not listed. */
export function grpcMethodAccess(path: string): Access | undefined {
  return Object.hasOwn(GRPC_METHOD_ACCESS, path) ? GRPC_METHOD_ACCESS[path] : undefined;
}
