import {
  credentials,
  loadPackageDefinition,
  Metadata,
  type CallOptions,
  type Client,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_DIR } from '../../../src/tiers/remote/proto-clients.js';

/** A plain @grpc/grpc-js client of tiergate.v1.Gateway and grpc.health.v1, as an application would write it. */
export interface GatewayClients {
  readonly gateway: Client & Record<string, (...args: unknown[]) => unknown>;
  readonly health: Client & Record<string, (...args: unknown[]) => unknown>;
  close(): void;
}

export function gatewayClients(address: string): GatewayClients {
  const def = loadSync(['tiergate/v1/gateway.proto', 'grpc/health/v1/health.proto'], {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const root = loadPackageDefinition(def) as GrpcObject;
  const ctor = (path: string[]): ServiceClientConstructor => {
    let node: unknown = root;
    for (const p of path) node = (node as Record<string, unknown>)[p];
    return node as ServiceClientConstructor;
  };
  const gateway = new (ctor(['tiergate', 'v1', 'Gateway']))(
    address,
    credentials.createInsecure(),
  ) as GatewayClients['gateway'];
  const health = new (ctor(['grpc', 'health', 'v1', 'Health']))(
    address,
    credentials.createInsecure(),
  ) as GatewayClients['health'];
  return {
    gateway,
    health,
    close: () => {
      gateway.close();
      health.close();
    },
  };
}

export function bearer(key: string): Metadata {
  const m = new Metadata();
  m.set('authorization', `Bearer ${key}`);
  return m;
}

/** Promise form of a unary call. */
export function call<Res>(
  client: GatewayClients['gateway'] | GatewayClients['health'],
  method: string,
  request: unknown,
  metadata = new Metadata(),
  options: CallOptions = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as (
      req: unknown,
      md: Metadata,
      opts: CallOptions,
      cb: (err: ServiceError | null, res?: Res) => void,
    ) => unknown;
    fn.call(client, request, metadata, options, (err, res) =>
      err !== null ? reject(err) : resolve(res as Res),
    );
  });
}

/** A unary call's response and its trailing metadata (the status's). */
export function callWithTrailers<Res>(
  client: GatewayClients['gateway'],
  method: string,
  request: unknown,
  metadata = new Metadata(),
): Promise<{ response: Res; trailers: Metadata }> {
  return new Promise((resolve, reject) => {
    let response: Res | undefined;
    let failed: ServiceError | undefined;
    const fn = client[method] as (
      req: unknown,
      md: Metadata,
      cb: (err: ServiceError | null, res?: Res) => void,
    ) => { on(event: 'status', listener: (s: { metadata: Metadata }) => void): unknown };
    const c = fn.call(client, request, metadata, (err, res) => {
      if (err !== null) failed = err;
      else response = res;
    });
    // 'status' comes after the callback's value: both are known then.
    c.on('status', (s) => {
      setImmediate(() =>
        failed !== undefined ? reject(failed) : resolve({ response: response as Res, trailers: s.metadata }),
      );
    });
  });
}

export function stream<Res>(
  client: GatewayClients['gateway'],
  method: string,
  request: unknown,
  metadata = new Metadata(),
  options: CallOptions = {},
): ClientReadableStream<Res> {
  const fn = client[method] as (req: unknown, md: Metadata, opts: CallOptions) => ClientReadableStream<Res>;
  return fn.call(client, request, metadata, options);
}

/** Collects a server stream; rejects with the call's status error. */
export async function collect<Res>(s: ClientReadableStream<Res>): Promise<Res[]> {
  const out: Res[] = [];
  for await (const m of s as AsyncIterable<Res>) out.push(m);
  return out;
}
