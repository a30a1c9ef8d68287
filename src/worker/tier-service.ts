import type {
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  GenerateRequestMessage,
  GenerateResponseMessage,
  InfoResponseMessage,
} from '../tiers/remote/proto-clients.js';
import type { GenerateRequest, Tier } from '../tiers/tier.js';
import { TierCounters } from './tier-counters.js';
import { BadTierRequest, tierErrorStatus, WorkerDeadlineError } from './tier-status.js';

export interface TierServiceOptions {
  /** Requests the tier serves at once (reported in Info; the tier itself enforces it). */
  readonly maxConcurrent: number;
  /** Versions and settings reported in Info `runtime`. */
  readonly runtime: Record<string, string>;
}

/**
 * tiergate.v1.Tier (proto/tiergate/v1/tier.proto) over a local Tier: the contract the PyTorch
 * sidecar serves, so the gateway's RemoteTier talks to a worker exactly as to the sidecar.
 * Cancelling the call or reaching its deadline aborts the tier's generation.
 */
export function tierService(
  tier: Tier,
  options: TierServiceOptions,
  log: Logger,
  counters = new TierCounters(),
): UntypedServiceImplementation {
  return {
    Generate(call: ServerWritableStream<GenerateRequestMessage, GenerateResponseMessage>) {
      void generate(tier, call, counters, log);
    },
    Score(
      call: ServerUnaryCall<{ tokens: number[]; requestId: string }, { logprobs: number[] }>,
      callback: sendUnaryData<{ logprobs: number[] }>,
    ) {
      counters.score();
      const controller = new AbortController();
      call.once('cancelled', () => controller.abort(new Error('cancelled by the client')));
      tier.score(call.request.tokens, controller.signal).then(
        (logprobs) => callback(null, { logprobs: [...logprobs] }),
        (err: unknown) => callback(tierErrorStatus(err)),
      );
    },
    Info(_call: ServerUnaryCall<unknown, InfoResponseMessage>, callback: sendUnaryData<InfoResponseMessage>) {
      const info = tier.info();
      callback(null, {
        framework: info.framework,
        modelId: info.modelId,
        variant: info.variant,
        precision: info.precision,
        contextLength: info.contextLength,
        vocabSize: info.vocabSize,
        maxConcurrentRequests: options.maxConcurrent,
        capabilities: ['generate', 'score', 'top_logprobs', 'seed'],
        counters: counters.snapshot(),
        runtime: options.runtime,
      });
    },
  };
}

async function generate(
  tier: Tier,
  call: ServerWritableStream<GenerateRequestMessage, GenerateResponseMessage>,
  counters: TierCounters,
  log: Logger,
): Promise<void> {
  const controller = new AbortController();
  const onCancel = (): void => controller.abort(new Error('cancelled by the client'));
  call.once('cancelled', onCancel);
  const deadline = effectiveDeadline(call);
  // The worker owns the deadline in its process: past it, this timer aborts the tier's stream.
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(
          () => controller.abort(new WorkerDeadlineError('deadline exceeded')),
          Math.max(0, deadline - Date.now()),
        );
  counters.started();
  let outcome: 'finished' | 'cancelled' | 'deadline' | 'failed' = 'failed';
  try {
    const request = toTierRequest(call.request, tier, deadline);
    for await (const event of tier.generate(request, controller.signal)) {
      if (event.kind === 'tokens') {
        // The wire protocol carries one token per message.
        for (let i = 0; i < event.tokens.length; i++) {
          counters.token();
          const top = event.top?.[i];
          call.write({
            event: 'token',
            token: { token: event.tokens[i]!, logprob: event.logprobs[i]!, top: top ? [...top] : [] },
          });
        }
      } else {
        const reason = event.reason === 'stop' ? 'FINISH_REASON_STOP' : 'FINISH_REASON_LENGTH';
        call.write({ event: 'finish', finish: { reason, usage: null } });
      }
    }
    outcome = 'finished';
    call.end();
  } catch (err) {
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
    outcome = call.cancelled ? 'cancelled' : reason instanceof WorkerDeadlineError ? 'deadline' : 'failed';
    if (outcome === 'failed') log.error({ err, requestId: call.request.requestId }, 'generate failed');
    // A cancelled call has no one to answer.
    // grpc-js turns an 'error' event on a server stream into the call's status.
    if (!call.cancelled) call.emit('error', tierErrorStatus(reason));
  } finally {
    clearTimeout(timer);
    call.off('cancelled', onCancel);
    counters.ended(outcome);
  }
}

/** The earlier of the call's gRPC deadline and the request's own `deadline_unix_ms`. */
function effectiveDeadline(
  call: ServerWritableStream<GenerateRequestMessage, GenerateResponseMessage>,
): number | undefined {
  const grpc = call.getDeadline();
  const fromCall = grpc instanceof Date ? grpc.getTime() : Number.isFinite(grpc) ? grpc : undefined;
  const fromRequest = call.request.deadlineUnixMs > 0 ? call.request.deadlineUnixMs : undefined;
  if (fromCall === undefined) return fromRequest;
  return fromRequest === undefined ? fromCall : Math.min(fromCall, fromRequest);
}

function toTierRequest(m: GenerateRequestMessage, tier: Tier, deadline: number | undefined): GenerateRequest {
  const { vocabSize, contextLength } = tier.info();
  if (m.tokens.length === 0) throw new BadTierRequest('tokens must not be empty');
  const bad = vocabSize > 0 ? m.tokens.find((t) => t >= vocabSize) : undefined;
  if (bad !== undefined)
    throw new BadTierRequest(`token id ${bad} is outside the vocabulary (size ${vocabSize})`);
  if (contextLength > 0 && m.tokens.length >= contextLength) {
    throw new BadTierRequest(
      `prompt of ${m.tokens.length} tokens does not fit the context (${contextLength})`,
    );
  }
  return {
    tokens: m.tokens,
    sampling: {
      temperature: m.sampling.temperature,
      topP: m.sampling.topP,
      topK: m.sampling.topK,
      seed: m.sampling.seed,
    },
    maxTokens: m.maxTokens,
    stopTokens: m.stopTokens,
    topLogprobs: m.topLogprobs,
    deadline,
    requestId: m.requestId === '' ? undefined : m.requestId,
  };
}
