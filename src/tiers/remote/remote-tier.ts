import { Metadata, status as GrpcStatus, type CallOptions, type ClientReadableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { RemoteTierConfig } from '../../config/index.js';
import { remoteConfigProblems } from '../../config/tiers/remote.js';
import { resolveVariant, type ModelFamily, type VariantInfo } from '../../family/manifest.js';
import type { MetricsService } from '../../observability/metrics.js';
import { traceContextOfRequest } from '../../observability/tracing.js';
import {
  tokenEvent,
  type GenerateRequest,
  type Tier,
  type TierEvent,
  type TierFramework,
  type TierHealth,
  type TierInfo,
  type TokenEvent,
  type TokenLogprob,
} from '../tier.js';
import { TierUnavailableError } from '../errors.js';
import { HealthProbe } from './health-probe.js';
import {
  channelOptions,
  createTierClient,
  unary,
  type GeneratedTokenMessage,
  type GenerateRequestMessage,
  type GenerateResponseMessage,
  type InfoResponseMessage,
  type TierClient,
} from './proto-clients.js';
import { fromGrpcError, isServiceError, RemoteTierError } from './remote-tier-error.js';
import { SidecarSupervisor } from './sidecar-supervisor.js';
import { sidecarMetrics, type SidecarMetrics } from './sidecar-metrics.js';
import { type CancelSignal } from '../cancellation.js';
import type { KeptSequence, OpenSequenceOptions } from '../kept-sequence.js';
import { RemoteKeptSequence } from './remote-kept-sequence.js';

export interface RemoteTierDeps {
  readonly logger: Logger;
  readonly metrics: MetricsService;
  readonly family: ModelFamily;
}

const FRAMEWORKS: readonly TierFramework[] = ['llama.cpp', 'onnxruntime', 'pytorch', 'echo'];

/**
 * A tier served over gRPC (proto/tiergate/v1/tier.proto): the PyTorch sidecar, spawned and
 * supervised here (`spawn: true`), or any external tier server (`address`).
 *
 * The remaining budget of a request becomes the call's gRPC deadline, an aborted signal cancels
 * the call (the server stops decoding at its next step), and a stream that breaks becomes a typed
 * RemoteTierError. The channel keeps itself alive with HTTP/2 pings and reconnects on its own;
 * after a sidecar restart on a new port the tier switches to the new address.
 */
export class RemoteTier implements Tier {
  private client: TierClient | undefined;
  private probe: HealthProbe | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private supervisor: SidecarSupervisor | undefined;
  private remoteInfo: InfoResponseMessage | undefined;
  /** The manifest variant a spawned sidecar serves (its precision naming wins over the GGUF's). */
  private variant: VariantInfo | undefined;
  private externalReady = false;
  private externalDetail = 'not started';
  private closed = false;
  private readonly log: Logger;
  private readonly metrics: SidecarMetrics;

  constructor(
    readonly name: string,
    private readonly options: RemoteTierConfig,
    private readonly deps: RemoteTierDeps,
  ) {
    const problems = remoteConfigProblems(options);
    if (problems.length > 0) {
      throw new RemoteTierError('TG_REMOTE_CONFIG', `tier "${name}": ${problems.join('; ')}`);
    }
    this.log = deps.logger;
    this.metrics = sidecarMetrics(deps.metrics);
  }

  async start(): Promise<void> {
    try {
      if (this.options.spawn) await this.startSidecar();
      else await this.startExternal(this.options.address as string);
      this.remoteInfo = await this.fetchInfo();
      this.log.info(
        {
          modelId: this.remoteInfo.modelId,
          variant: this.remoteInfo.variant,
          runtime: this.remoteInfo.runtime,
        },
        'remote tier ready',
      );
    } catch (err) {
      if (this.options.required) throw err;
      // Degraded start: the gateway serves its other tiers; this one keeps retrying in the
      // background and health() / readyz say why it is not ready.
      this.log.error({ err: (err as Error).message }, 'remote tier not ready; continuing without it');
    }
  }

  private async startSidecar(): Promise<void> {
    const o = this.options;
    const variant = resolveVariant(this.deps.family, o.model, '.gguf');
    this.variant = variant;
    const supervisor = new SidecarSupervisor(
      {
        python: o.python,
        modelPath: variant.file,
        modelId: this.deps.family.id,
        variant: variant.id,
        threads: o.threads,
        maxConcurrent: o.maxConcurrent,
        listen: o.listen,
        env: o.env,
        startTimeoutMs: o.startTimeoutMs,
        restart: o.restart,
        healthIntervalMs: o.healthIntervalMs,
        channel: channelOptions(o.keepaliveMs),
        logLevel: this.log.isLevelEnabled('debug') ? 'debug' : 'info',
      },
      this.log,
    );
    this.supervisor = supervisor;
    supervisor.on('ready', (address: string) => {
      this.connect(address);
      // A restarted (or late) sidecar: refresh what it serves before counting it ready.
      void this.fetchInfo().then(
        (info) => (this.remoteInfo = info),
        (err: Error) => this.log.warn({ err: err.message }, 'remote tier Info failed'),
      );
    });
    supervisor.on('restart', () => this.metrics.restarts.inc({ tier: this.name }));
    supervisor.on('down', () => this.metrics.up.set({ tier: this.name }, 0));
    this.connect(await supervisor.start());
  }

  private async startExternal(address: string): Promise<void> {
    const o = this.options;
    this.connect(address);
    const probe = new HealthProbe(address, channelOptions(o.keepaliveMs));
    this.probe = probe;
    this.watchExternal(probe);
    const result = await probe.waitServing(o.connectTimeoutMs, 250, () => this.closed);
    if (result.status !== 'SERVING') {
      const why = result.status === 'ERROR' ? result.error : result.status;
      this.externalDetail = `tier server at ${address} not SERVING after ${o.connectTimeoutMs} ms (${why})`;
      throw new RemoteTierError('TG_REMOTE_UNAVAILABLE', `tier "${this.name}": ${this.externalDetail}`);
    }
    this.externalReady = true;
    this.externalDetail = `serving at ${address}`;
  }

  /** The server's Info, including its live counters (used by tests and `tiergate` tooling). */
  async fetchInfo(timeoutMs = 5_000): Promise<InfoResponseMessage> {
    const client = this.requireClient();
    try {
      return await unary(client.Info, client, {}, { deadline: new Date(Date.now() + timeoutMs) });
    } catch (err) {
      throw isServiceError(err) ? fromGrpcError(this.name, err, false) : err;
    }
  }

  /** The supervised sidecar's pid (spawn mode), for operators and crash tests. */
  get sidecarPid(): number | undefined {
    return this.supervisor?.pid;
  }

  get sidecarRestarts(): number {
    return this.supervisor?.restarts ?? 0;
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncGenerator<TierEvent> {
    signal.throwIfAborted();
    const client = this.requireClient();
    const deadline = request.deadline ?? Date.now() + this.options.requestTimeoutMs;
    if (deadline <= Date.now()) {
      throw new RemoteTierError('TG_REMOTE_DEADLINE', `tier "${this.name}": deadline already passed`);
    }
    const { sampling } = request;
    const call = (client.Generate as GenerateWithMetadata).call(
      client,
      {
        tokens: [...request.tokens],
        sampling: {
          temperature: sampling.temperature,
          topP: sampling.topP,
          topK: sampling.topK,
          // The gateway's PRNG takes the seed modulo 2^32 (src/text/sampling.ts); send it that way.
          ...(sampling.seed === undefined ? {} : { seed: sampling.seed >>> 0 }),
        },
        maxTokens: request.maxTokens,
        stopTokens: [...request.stopTokens],
        topLogprobs: request.topLogprobs,
        deadlineUnixMs: deadline,
        requestId: request.requestId ?? '',
        // The sidecar then sends every token queued for the stream in one message per send
        // (tier.proto TokenBatch), instead of a message per token; a server that does not know
        // the field (an older sidecar, a `tiergate worker`) keeps sending `token` messages.
        acceptTokenBatches: true,
      },
      traceMetadata(request.requestId),
      { deadline: new Date(deadline) },
    );
    const cancel = (): void => call.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    let tokens = 0;
    let finished = false;
    try {
      for await (const message of call as AsyncIterable<GenerateResponseMessage>) {
        if (message.tokenBatch) {
          // One TokenEvent for the batch: the tokens arrived together, so the layers above run
          // once for them (src/tiers/tier.ts TokenEvent).
          const batch = message.tokenBatch.tokens;
          if (batch.length === 0) continue;
          tokens += batch.length;
          yield tokensEvent(batch);
        } else if (message.token) {
          tokens++;
          yield tokenEvent(
            message.token.token,
            message.token.logprob,
            message.token.top.length > 0 ? topOf(message.token) : undefined,
          );
        } else if (message.finish) {
          finished = true;
          yield {
            kind: 'finish',
            reason: message.finish.reason === 'FINISH_REASON_STOP' ? 'stop' : 'length',
          };
        }
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (isServiceError(err)) {
        // Our own cancel() (the consumer stopped early) is not a failure of the tier.
        if (err.code === GrpcStatus.CANCELLED && finished) return;
        throw fromGrpcError(this.name, err, tokens > 0);
      }
      throw new RemoteTierError('TG_REMOTE_STREAM_BROKEN', `tier "${this.name}": ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      signal.removeEventListener('abort', cancel);
      // Ends the call when the consumer stopped early (break/return); a no-op once it completed.
      call.cancel();
    }
    if (signal.aborted) throw signal.reason;
    if (!finished) {
      throw new RemoteTierError(
        'TG_REMOTE_STREAM_BROKEN',
        `tier "${this.name}": stream ended after ${tokens} tokens without a finish event`,
      );
    }
  }

  /**
   * Kept sequences (src/tiers/kept-sequence.ts) over the KeptSequence RPC, present only while the
   * server's Info lists "kept_sequence": a `tiergate worker` answers that RPC UNIMPLEMENTED and
   * does not list it, so a tier it serves is never a drafter or verifier.
   */
  get openSequence():
    ((options: OpenSequenceOptions, signal: CancelSignal) => Promise<KeptSequence>) | undefined {
    if (this.remoteInfo?.capabilities.includes('kept_sequence') !== true) return undefined;
    return (options, signal) => this.openKept(options, signal);
  }

  private async openKept(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence> {
    const client = this.requireClient();
    const deadline = options.deadline ?? Date.now() + this.options.requestTimeoutMs;
    return RemoteKeptSequence.open(this.name, client, options, deadline, signal);
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    signal?.throwIfAborted();
    const client = this.requireClient();
    let onAbort: (() => void) | undefined;
    try {
      const response = await new Promise<{ logprobs: number[] }>((resolve, reject) => {
        const call = client.Score(
          { tokens: [...tokens], requestId: '' },
          { deadline: new Date(Date.now() + this.options.requestTimeoutMs) },
          (err, res) =>
            err !== null
              ? reject(err)
              : res === undefined
                ? reject(new Error('empty response'))
                : resolve(res),
        ) as { cancel(): void };
        onAbort = () => call.cancel();
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      return Float64Array.from(response.logprobs);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw isServiceError(err) ? fromGrpcError(this.name, err, false) : err;
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  info(): TierInfo {
    const r = this.remoteInfo;
    const framework = FRAMEWORKS.find((f) => f === r?.framework) ?? 'pytorch';
    return {
      name: this.name,
      framework,
      modelId: r?.modelId ?? this.deps.family.id,
      variant: r?.variant ?? this.options.model,
      precision: this.variant?.precision || r?.precision || 'unknown',
      contextLength: r?.contextLength ?? 0,
      vocabSize: r?.vocabSize ?? 0,
      capacity: this.options.maxConcurrent,
    };
  }

  health(): TierHealth {
    if (this.closed) return { ready: false, detail: 'closed' };
    if (this.supervisor !== undefined) {
      const ready =
        this.supervisor.state === 'ready' && this.client !== undefined && this.remoteInfo !== undefined;
      return { ready, detail: this.supervisor.detail };
    }
    return { ready: this.externalReady && this.remoteInfo !== undefined, detail: this.externalDetail };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.healthTimer);
    this.probe?.close();
    this.client?.close();
    this.client = undefined;
    await this.supervisor?.stop();
    this.metrics.up.set({ tier: this.name }, 0);
  }

  private connect(address: string): void {
    if (this.closed) return;
    const previous = this.client;
    if (previous !== undefined && previous.getChannel().getTarget().endsWith(address)) return;
    this.client = createTierClient(address, channelOptions(this.options.keepaliveMs));
    previous?.close();
    this.metrics.up.set({ tier: this.name }, 1);
    this.log.info({ address }, 'remote tier connected');
  }

  private watchExternal(probe: HealthProbe): void {
    this.healthTimer = setInterval(() => {
      void probe.check(Math.max(500, this.options.healthIntervalMs)).then((r) => {
        const ready = r.status === 'SERVING';
        if (ready !== this.externalReady) {
          this.log[ready ? 'info' : 'warn']({ status: r.status }, 'remote tier health changed');
        }
        this.externalReady = ready;
        this.metrics.up.set({ tier: this.name }, ready ? 1 : 0);
        this.externalDetail = ready
          ? `serving at ${probe.address}`
          : `tier server at ${probe.address}: ${r.status === 'ERROR' ? r.error : r.status}`;
        // Info may have failed at start while the server was down; fetch it once it is back.
        if (ready && this.remoteInfo === undefined) {
          void this.fetchInfo().then(
            (info) => (this.remoteInfo = info),
            () => undefined,
          );
        }
      });
    }, this.options.healthIntervalMs);
    this.healthTimer.unref();
  }

  private requireClient(): TierClient {
    // The gateway's shared "not able to serve" error (→ 503 and a fallback), with the reason.
    if (this.closed) throw new TierUnavailableError(this.name, `tier "${this.name}" is closed`);
    if (this.client === undefined) {
      const why = this.supervisor?.detail ?? this.externalDetail;
      throw new TierUnavailableError(this.name, `tier "${this.name}" is not connected (${why})`);
    }
    if (this.supervisor !== undefined && this.supervisor.state !== 'ready') {
      throw new TierUnavailableError(this.name, `tier "${this.name}": ${this.supervisor.detail}`);
    }
    if (this.supervisor === undefined && !this.externalReady) {
      throw new TierUnavailableError(this.name, `tier "${this.name}": ${this.externalDetail}`);
    }
    return this.client;
  }
}

function topOf(t: GeneratedTokenMessage): TokenLogprob[] {
  return t.top.map((a) => ({ token: a.token, logprob: a.logprob }));
}

/** A TokenBatch's tokens as one event; `top` as for single tokens (absent when none has any). */
function tokensEvent(batch: readonly GeneratedTokenMessage[]): TokenEvent {
  return {
    kind: 'tokens',
    tokens: batch.map((t) => t.token),
    logprobs: batch.map((t) => t.logprob),
    top: batch.some((t) => t.top.length > 0) ? batch.map(topOf) : undefined,
  };
}

/** grpc-js's call form with metadata before the options (the typed client declares only the other). */
type GenerateWithMetadata = (
  request: GenerateRequestMessage,
  metadata: Metadata,
  options: CallOptions,
) => ClientReadableStream<GenerateResponseMessage>;

/** The request's trace context (tracing on) as the call's metadata, so the server can join its trace (docs/tracing.md). */
function traceMetadata(requestId: string | undefined): Metadata {
  const metadata = new Metadata();
  const trace = traceContextOfRequest(requestId);
  if (trace !== undefined) for (const [name, value] of Object.entries(trace)) metadata.set(name, value);
  return metadata;
}
