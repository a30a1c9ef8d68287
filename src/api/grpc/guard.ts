import type {
  handleServerStreamingCall,
  handleUnaryCall,
  Metadata,
  ServerUnaryCall,
  ServiceDefinition,
  StatusObject,
  UntypedHandleCall,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Gateway } from '../../gateway/gateway.js';
import { denialError, keyVerifier, presentedKey } from '../auth.js';
import { grpcMethodAccess, type Scope } from '../scopes.js';
import { CallContext, rememberKey } from './call-context.js';

/**
 * The gRPC side of route access: every method of a service is wrapped with the key check of its
 * entry in src/api/scopes.ts, looked up by the method's path, which is what grpc-js dispatches
 * on. A method missing from the table throws here, so the server does not start. A call to a
 * method the server does not have never reaches this: grpc-js answers it UNIMPLEMENTED.
 * A refused call gets its summary line and request metrics like any other (CallContext.finish).
 */
export function guardService(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  gateway: Gateway,
  log: Logger,
): UntypedServiceImplementation {
  const verify = gateway.config.auth.enabled ? keyVerifier(gateway.config) : undefined;
  const guarded: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const access = grpcMethodAccess(method.path);
    if (access === undefined) {
      throw new Error(
        `gRPC method ${method.path} has no access in src/api/scopes.ts; every method must be listed there`,
      );
    }
    const handler = implementation[name];
    if (handler === undefined) continue;
    if (verify === undefined || access === 'open') {
      guarded[name] = handler;
      continue;
    }
    /** Undefined: the call may go on (its key is remembered for the handler's CallContext). */
    const refusal = (call: Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'once'>) =>
      admit(gateway, log, verify, method.path, access, call);
    guarded[name] = method.responseStream
      ? streamingResponse(handler as handleServerStreamingCall<unknown, unknown>, refusal)
      : singleResponse(handler as handleUnaryCall<unknown, unknown>, refusal);
  }
  return guarded;
}

type Refusal = (
  call: Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'once'>,
) => Partial<StatusObject> | undefined;

/** Unary and client-streaming methods: the status goes to the callback. */
function singleResponse(handler: handleUnaryCall<unknown, unknown>, refusal: Refusal): UntypedHandleCall {
  return (call: ServerUnaryCall<unknown, unknown>, callback: Parameters<typeof handler>[1]) => {
    const status = refusal(call);
    if (status === undefined) handler(call, callback);
    else callback(status);
  };
}

/** Server-streaming and bidi methods: grpc-js ends the call with an 'error' event's status. */
function streamingResponse(
  handler: handleServerStreamingCall<unknown, unknown>,
  refusal: Refusal,
): UntypedHandleCall {
  return (call: Parameters<typeof handler>[0]) => {
    const status = refusal(call);
    if (status === undefined) handler(call);
    else call.emit('error', status);
  };
}

function admit(
  gateway: Gateway,
  log: Logger,
  verify: ReturnType<typeof keyVerifier>,
  path: string,
  scope: Scope,
  call: Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline' | 'once'>,
): Partial<StatusObject> | undefined {
  const result = verify(keyOf(call.metadata), scope);
  if (result.denied === undefined) {
    if (result.key !== undefined) rememberKey(call, result.key);
    return undefined;
  }
  const ctx = new CallContext(gateway, path, call, log);
  ctx.apiKey = result.key;
  ctx.denied = result.denied;
  return ctx.finish(denialError(result.denied, scope, path))?.status;
}

function keyOf(metadata: Metadata): string | undefined {
  const header = metadata.get('authorization')[0];
  return presentedKey(typeof header === 'string' ? header : header?.toString('utf8'));
}
