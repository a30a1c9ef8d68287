import type { RemoteTierConfig } from '../../config/index.js';
import type { Tier } from '../tier.js';
import { BalancedRemoteTier } from './balanced-remote-tier.js';
import { RemoteTier, type RemoteTierDeps } from './remote-tier.js';

/**
 * The `remote` kind's factory: one server (`address`, or `spawn: true` for the supervised
 * sidecar) is a RemoteTier; several (`addresses`) or a name to resolve to many (`resolve: true`)
 * is a BalancedRemoteTier over one RemoteTier per address.
 */
export function createRemoteTier(name: string, options: RemoteTierConfig, deps: RemoteTierDeps): Tier {
  if (!options.spawn && (options.addresses !== undefined || options.resolve)) {
    return new BalancedRemoteTier(name, options, deps);
  }
  return new RemoteTier(name, options, deps);
}
