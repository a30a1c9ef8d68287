import { GatewayError } from '../errors/gateway-error.js';
import type { PolicyConfig, RoutingConfig } from '../config/policies.js';

export interface SelectedPolicy {
  readonly name: string;
  readonly policy: PolicyConfig;
  /** What selected it, for logs and explain. */
  readonly by: 'request' | 'api_key' | 'model' | 'default';
}

/**
 * Which policy applies: the request's own choice (body field or header), else its API key's,
 * else its model's, else the default; undefined means the static model table. An unknown name
 * asked for by the request is a 400 (config-side names were checked at load).
 */
export function selectPolicy(
  routing: RoutingConfig,
  request: {
    readonly requested?: string | undefined;
    readonly apiKey?: string | undefined;
    readonly model: string;
  },
): SelectedPolicy | undefined {
  const pick = (name: string | undefined, by: SelectedPolicy['by']): SelectedPolicy | undefined => {
    if (name === undefined || !Object.hasOwn(routing.policies, name)) return undefined;
    return { name, policy: routing.policies[name]!, by };
  };
  if (request.requested !== undefined) {
    const chosen = pick(request.requested, 'request');
    if (chosen === undefined) {
      const known = Object.keys(routing.policies).join(', ') || '(none)';
      throw new GatewayError(
        'bad_request',
        `Unknown routing policy "${request.requested}" (policies: ${known}).`,
        { param: 'tiergate.policy' },
      );
    }
    return chosen;
  }
  return (
    pick(request.apiKey === undefined ? undefined : routing.byApiKey[request.apiKey], 'api_key') ??
    pick(routing.byModel[request.model], 'model') ??
    pick(routing.defaultPolicy, 'default')
  );
}
