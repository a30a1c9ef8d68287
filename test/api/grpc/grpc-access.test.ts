import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  credentials,
  Metadata,
  status as GrpcStatus,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { guardService } from '../../../src/api/grpc/guard.js';
import { serverDefinitions } from '../../../src/api/grpc/proto.js';
import { GRPC_METHOD_ACCESS, type Access } from '../../../src/api/scopes.js';
import { echoConfig, startGateway, type TestGateway } from '../../helpers/start-gateway.js';

const INFERENCE_KEY = 'sk-grpc-access-inference-0123';
const ADMIN_KEY = 'sk-grpc-access-admin-0123';

type KeyKind = 'none' | 'wrong' | 'inference' | 'admin';
const KEYS: Readonly<Record<KeyKind, string | undefined>> = {
  none: undefined,
  wrong: 'sk-grpc-access-not-configured',
  inference: INFERENCE_KEY,
  admin: ADMIN_KEY,
};
const KINDS = Object.keys(KEYS) as KeyKind[];

/** Requests that make a method succeed; a method not listed gets `{}` (then any answer but a refusal). */
const REQUESTS: Readonly<Record<string, unknown>> = {
  '/tiergate.v1.Gateway/Complete': { model: 'tiergate-echo', prompt: 'hi', options: { maxTokens: 2 } },
  '/tiergate.v1.Gateway/CompleteStream': { model: 'tiergate-echo', prompt: 'hi', options: { maxTokens: 2 } },
  '/tiergate.v1.Gateway/Chat': {
    model: 'tiergate-echo',
    messages: [{ role: 'user', content: 'hi' }],
    options: { maxTokens: 2 },
  },
  '/tiergate.v1.Gateway/ChatStream': {
    model: 'tiergate-echo',
    messages: [{ role: 'user', content: 'hi' }],
    options: { maxTokens: 2 },
  },
  '/tiergate.v1.Gateway/ListModels': {},
  '/tiergate.v1.Gateway/Explain': { model: 'tiergate-echo', prompt: 'hi' },
  '/grpc.health.v1.Health/Check': { service: '' },
  '/grpc.health.v1.Health/Watch': { service: '' },
};

/** The methods the gateway's gRPC server registers (src/api/grpc/grpc-server.ts). */
function serverMethods(): MethodDefinition<unknown, unknown>[] {
  const defs = serverDefinitions();
  return [...Object.values(defs.gateway), ...Object.values(defs.health)] as MethodDefinition<
    unknown,
    unknown
  >[];
}

function metadataFor(kind: KeyKind, requestId: string): Metadata {
  const md = new Metadata();
  const key = KEYS[kind];
  if (key !== undefined) md.set('authorization', `Bearer ${key}`);
  md.set('x-request-id', requestId);
  return md;
}

/** The call's status code: a stream counts as OK once its first message arrives (Watch never ends). */
function statusOf(
  client: Client,
  method: Pick<
    MethodDefinition<unknown, unknown>,
    'path' | 'responseStream' | 'requestSerialize' | 'responseDeserialize'
  >,
  request: unknown,
  md: Metadata,
): Promise<GrpcStatus> {
  return new Promise((resolve) => {
    const done = (err: ServiceError | null): void => resolve(err === null ? GrpcStatus.OK : err.code);
    if (!method.responseStream) {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        md,
        done,
      );
      return;
    }
    const call = client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      md,
    );
    call.once('data', () => {
      call.cancel();
      resolve(GrpcStatus.OK);
    });
    call.once('error', (err: ServiceError) => done(err));
    call.once('end', () => resolve(GrpcStatus.OK));
  });
}

function expected(access: Access, kind: KeyKind): GrpcStatus {
  if (access === 'open') return GrpcStatus.OK;
  if (kind === 'none' || kind === 'wrong') return GrpcStatus.UNAUTHENTICATED;
  return kind === access ? GrpcStatus.OK : GrpcStatus.PERMISSION_DENIED;
}

describe('gRPC access with API keys on, from the method grpc-js dispatched', () => {
  let gw: TestGateway;
  let client: Client;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    gw = await startGateway(
      echoConfig({
        grpc: { enabled: true, host: '127.0.0.1', port: 0 },
        logging: { level: 'info' },
        auth: {
          enabled: true,
          keys: [
            { name: 'app', key: INFERENCE_KEY, scopes: ['inference'] },
            { name: 'ops', key: ADMIN_KEY, scopes: ['admin'] },
          ],
        },
      }),
      'unused',
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    client = new Client(gw.grpcAddress!, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await gw.shutdown();
  });

  test('the methods the server registers and the access table agree', () => {
    const paths = serverMethods().map((m) => m.path);
    assert.deepEqual([...paths].sort(), Object.keys(GRPC_METHOD_ACCESS).sort());
    const open = paths.filter((p) => GRPC_METHOD_ACCESS[p] === 'open');
    assert.deepEqual(open.sort(), ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Watch']);
  });

  test('every method answers every key kind as its access says', async () => {
    for (const method of serverMethods()) {
      const access = GRPC_METHOD_ACCESS[method.path]!;
      const known = Object.hasOwn(REQUESTS, method.path);
      for (const kind of KINDS) {
        const code = await statusOf(
          client,
          method,
          REQUESTS[method.path] ?? {},
          metadataFor(kind, `g-${kind}`),
        );
        const want = expected(access, kind);
        const what = `${method.path} with ${kind} key: ${GrpcStatus[code]}`;
        if (want === GrpcStatus.OK && !known)
          assert.ok(code !== GrpcStatus.UNAUTHENTICATED && code !== GrpcStatus.PERMISSION_DENIED, what);
        else assert.equal(code, want, what);
      }
    }
  });

  test('an unknown method is UNIMPLEMENTED for every caller', async () => {
    const raw = {
      responseStream: false,
      requestSerialize: (): Buffer => Buffer.alloc(0),
      responseDeserialize: (b: Buffer): Buffer => b,
    };
    for (const path of [
      '/tiergate.v1.Gateway/Nope',
      '/tiergate.v1.Admin/Tiers',
      '/grpc.health.v1.Health/List',
    ]) {
      for (const kind of KINDS) {
        const code = await statusOf(client, { ...raw, path }, {}, metadataFor(kind, 'g-unknown'));
        assert.equal(code, GrpcStatus.UNIMPLEMENTED, `${path} with ${kind} key`);
      }
    }
  });

  test('refused calls are logged with the reason and without key material; admitted ones name the key', async () => {
    const complete = serverMethods().find((m) => m.path === '/tiergate.v1.Gateway/Complete')!;
    const at = lines.length;
    const ids = { none: 'gl-none', wrong: 'gl-wrong', admin: 'gl-admin', inference: 'gl-ok' } as const;
    for (const kind of KINDS)
      await statusOf(client, complete, REQUESTS[complete.path], metadataFor(kind, ids[kind]));
    const summary = (id: string) => lines.slice(at).find((l) => l.requestId === id && l.msg === 'request');
    assert.deepEqual(
      KINDS.map((kind) => {
        const l = summary(ids[kind]);
        return [l?.method, l?.status, l?.denied, l?.apiKey];
      }),
      [
        ['/tiergate.v1.Gateway/Complete', 401, 'no_key', undefined],
        ['/tiergate.v1.Gateway/Complete', 401, 'unknown_key', undefined],
        ['/tiergate.v1.Gateway/Complete', 200, undefined, 'app'],
        ['/tiergate.v1.Gateway/Complete', 403, 'missing_scope', 'ops'],
      ],
    );
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of [INFERENCE_KEY, ADMIN_KEY, KEYS.wrong!])
      assert.ok(!text.includes(secret), 'a key was logged');
  });

  test('a method missing from the access table stops the server from starting', () => {
    const complete = serverDefinitions().gateway.Complete!;
    const definition = { Extra: { ...complete, path: '/tiergate.v1.Gateway/Extra' } };
    assert.throws(
      () => guardService(definition, { Extra: () => undefined }, gw.gateway, gw.gateway.logger),
      /\/tiergate\.v1\.Gateway\/Extra has no access in src\/api\/scopes\.ts/,
    );
  });
});
