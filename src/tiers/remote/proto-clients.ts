/**
 * Typed gRPC clients for proto/tiergate/v1/tier.proto and proto/grpc/health/v1/health.proto,
 * loaded at run time with @grpc/proto-loader (no generated code to keep in sync).
 */
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  type CallOptions,
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** proto/ at the repository root; the same relative path from src/ and from dist/. */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

/** How every tiergate process loads the protos: numbers as JS numbers, enums as their names. */
export const PROTO_LOAD_OPTIONS = {
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

// Message shapes as proto-loader presents them with the options below (camelCase fields, enums
// as names, 64-bit integers as numbers, defaults filled in, oneof name set).
export interface SamplingMessage {
  temperature: number;
  topP: number;
  topK: number;
  seed?: number;
}

export interface GenerateRequestMessage {
  tokens: number[];
  sampling: SamplingMessage;
  maxTokens: number;
  stopTokens: number[];
  topLogprobs: number;
  deadlineUnixMs: number;
  requestId: string;
  /**
   * The client takes GenerateResponse.tokenBatch (tier.proto): a server that honours it sends
   * every token inside a batch; a server that predates it sends `token` messages regardless.
   * Optional here: servers (src/worker/tier-service.ts) see `false` from a client that omits it.
   */
  acceptTokenBatches?: boolean;
}

export interface TokenLogprobMessage {
  token: number;
  logprob: number;
}

export type FinishReasonName = 'FINISH_REASON_UNSPECIFIED' | 'FINISH_REASON_STOP' | 'FINISH_REASON_LENGTH';

export interface GeneratedTokenMessage {
  token: number;
  logprob: number;
  top: TokenLogprobMessage[];
}

export interface GenerateResponseMessage {
  event?: 'token' | 'tokenBatch' | 'finish';
  token?: GeneratedTokenMessage | null;
  /** The tokens that were ready when the server sent, in order; only to a client that opted in. */
  tokenBatch?: { tokens: GeneratedTokenMessage[] } | null;
  finish?: {
    reason: FinishReasonName;
    usage: { promptTokens: number; completionTokens: number } | null;
  } | null;
}

export interface CountersMessage {
  generateStarted: number;
  generateFinished: number;
  generateCancelled: number;
  generateDeadlineExceeded: number;
  generateFailed: number;
  tokensGenerated: number;
  scoreRequests: number;
  activeRequests: number;
  /** KeptSequence streams (absent from servers that do not serve them). */
  keptSequencesOpened?: number;
  keptSequencesOpen?: number;
  keptCalls?: number;
}

export interface InfoResponseMessage {
  framework: string;
  modelId: string;
  variant: string;
  precision: string;
  contextLength: number;
  vocabSize: number;
  maxConcurrentRequests: number;
  capabilities: string[];
  counters: CountersMessage | null;
  runtime: Record<string, string>;
}

export interface SequenceEditMessage {
  keep: number;
  append: number[];
}

export interface SequenceCommandMessage {
  call: number;
  open?: { stopTokens: number[]; deadlineUnixMs: number; requestId: string };
  draft?: { edit: SequenceEditMessage; k: number };
  verify?: {
    edit: SequenceEditMessage;
    draft: number[];
    sampling: { temperature: number; topP: number; topK: number };
    seed: number;
    topLogprobs: number;
    logprobs: boolean;
  };
}

export interface VerifiedPositionMessage {
  accept: number;
  token: number;
  tokenLogprob: number;
  draftLogprob: number;
  top: TokenLogprobMessage[];
}

export interface SequenceReplyMessage {
  call: number;
  reply?: 'opened' | 'draft' | 'verify';
  opened?: { contextLength: number } | null;
  draft?: { tokens: number[]; held: number } | null;
  verify?: { positions: VerifiedPositionMessage[]; held: number } | null;
}

export type ServingStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

type Unary<Req, Res> = (
  request: Req,
  options: CallOptions,
  callback: (err: ServiceError | null, response?: Res) => void,
) => unknown;

export interface TierClient extends Client {
  Generate(
    request: GenerateRequestMessage,
    options: CallOptions,
  ): ClientReadableStream<GenerateResponseMessage>;
  Score: Unary<{ tokens: number[]; requestId: string }, { logprobs: number[] }>;
  Info: Unary<Record<string, never>, InfoResponseMessage>;
  KeptSequence(options: CallOptions): ClientDuplexStream<SequenceCommandMessage, SequenceReplyMessage>;
}

export interface HealthClient extends Client {
  Check: Unary<{ service: string }, { status: ServingStatusName }>;
}

let loaded: { tier: ServiceClientConstructor; health: ServiceClientConstructor } | undefined;

function constructors(): { tier: ServiceClientConstructor; health: ServiceClientConstructor } {
  if (loaded === undefined) {
    const definition = loadSync(
      ['tiergate/v1/tier.proto', 'grpc/health/v1/health.proto'],
      PROTO_LOAD_OPTIONS,
    );
    const root = loadPackageDefinition(definition);
    loaded = {
      tier: lookup(root, ['tiergate', 'v1', 'Tier']),
      health: lookup(root, ['grpc', 'health', 'v1', 'Health']),
    };
  }
  return loaded;
}

function lookup(root: GrpcObject, path: string[]): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function')
    throw new Error(`proto service ${path.join('.')} not found in ${PROTO_DIR}`);
  return node as ServiceClientConstructor;
}

/** Channel settings shared by the tier and health clients of one address. */
export function channelOptions(keepaliveMs: number): ChannelOptions {
  return {
    // Pings keep idle connections alive through proxies and reveal a dead peer between requests.
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(keepaliveMs, 5_000),
    'grpc.keepalive_permit_without_calls': 1,
    // Reconnect quickly after a sidecar restart instead of grpc's default 1 s → 120 s backoff.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2_000,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  };
}

export function createTierClient(address: string, options: ChannelOptions): TierClient {
  return new (constructors().tier)(address, credentials.createInsecure(), options) as unknown as TierClient;
}

export function createHealthClient(address: string, options: ChannelOptions): HealthClient {
  return new (constructors().health)(
    address,
    credentials.createInsecure(),
    options,
  ) as unknown as HealthClient;
}

/** Promise form of a unary call. */
export function unary<Req, Res>(
  method: Unary<Req, Res>,
  client: Client,
  request: Req,
  options: CallOptions,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, options, (err, response) => {
      if (err !== null) reject(err);
      else if (response === undefined) reject(new Error('empty gRPC response'));
      else resolve(response);
    });
  });
}
