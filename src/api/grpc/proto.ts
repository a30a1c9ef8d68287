/**
 * Service definitions for the gRPC servers (the gateway API, the tier worker and grpc.health.v1),
 * loaded at run time from proto/ with @grpc/proto-loader, with the same options as the clients
 * in src/tiers/remote/proto-clients.ts so both sides see the same message shapes.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { PROTO_DIR, PROTO_LOAD_OPTIONS } from '../../tiers/remote/proto-clients.js';

export interface ServerDefinitions {
  readonly gateway: ServiceDefinition;
  readonly tier: ServiceDefinition;
  readonly health: ServiceDefinition;
}

let loaded: ServerDefinitions | undefined;

export function serverDefinitions(): ServerDefinitions {
  if (loaded === undefined) {
    const definition = loadSync(
      ['tiergate/v1/gateway.proto', 'tiergate/v1/tier.proto', 'grpc/health/v1/health.proto'],
      PROTO_LOAD_OPTIONS,
    );
    loaded = {
      gateway: service(definition, 'tiergate.v1.Gateway'),
      tier: service(definition, 'tiergate.v1.Tier'),
      health: service(definition, 'grpc.health.v1.Health'),
    };
  }
  return loaded;
}

function service(definition: PackageDefinition, name: string): ServiceDefinition {
  const found = definition[name];
  if (found === undefined || 'format' in found)
    throw new Error(`proto service ${name} not found in ${PROTO_DIR}`);
  return found as ServiceDefinition;
}
