import {
  status as GrpcStatus,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** Service name → is it serving now (undefined: unknown service). Evaluated on every request. */
export type StatusSource = (service: string) => boolean | undefined;

/** How often Watch re-evaluates the status; a change is sent at most this late. */
const WATCH_INTERVAL_MS = 1_000;

/**
 * The standard grpc.health.v1 Health service (https://github.com/grpc/grpc/blob/master/doc/health-checking.md)
 * over a status function, so readiness is computed from live state rather than pushed into a map.
 * Check answers NOT_FOUND for unknown services, as the spec asks; Watch streams changes.
 */
export function healthService(source: StatusSource): UntypedServiceImplementation {
  const statusOf = (service: string): ServingStatus | undefined => {
    const serving = source(service);
    return serving === undefined ? undefined : serving ? 'SERVING' : 'NOT_SERVING';
  };
  return {
    Check(
      call: ServerUnaryCall<{ service: string }, { status: ServingStatus }>,
      callback: sendUnaryData<{ status: ServingStatus }>,
    ) {
      const status = statusOf(call.request.service);
      if (status === undefined)
        callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      else callback(null, { status });
    },
    Watch(call: ServerWritableStream<{ service: string }, { status: ServingStatus }>) {
      let last: ServingStatus | undefined;
      const send = (): void => {
        const status = statusOf(call.request.service) ?? 'SERVICE_UNKNOWN';
        if (status !== last) call.write({ status });
        last = status;
      };
      send();
      const timer = setInterval(send, WATCH_INTERVAL_MS);
      call.once('cancelled', () => clearInterval(timer));
      call.once('close', () => clearInterval(timer));
    },
  };
}
