import type { EchoTierConfig } from '../../config/index.js';
import type { TierDeps } from '../tier-deps.js';
import type {
  GenerateRequest,
  Tier,
  TierEvent,
  TierFinishReason,
  TierHealth,
  TierInfo,
  TokenLogprob,
} from '../tier.js';
import { sleepUnlessCancelled, type CancelSignal } from '../cancellation.js';

/**
 * Zero-work tier: replays the prompt's own tokens (cycling) as the "generation", with logprob 0.
 * Everything the gateway does around a tier (tokenising, streaming, stops, usage, metrics) runs
 * for real, so tests and `npm run bench:gateway` measure the gateway's own cost.
 */
export class EchoTier implements Tier {
  private ready = false;

  constructor(
    readonly name: string,
    private readonly options: EchoTierConfig,
    private readonly deps: TierDeps,
  ) {}

  async start(): Promise<void> {
    this.ready = true;
  }

  generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    return new EchoStream(request, signal, this.options, this.deps.tokenizer.bos);
  }

  async score(tokens: readonly number[]): Promise<Float64Array> {
    return new Float64Array(Math.max(0, tokens.length - 1));
  }

  info(): TierInfo {
    return {
      name: this.name,
      framework: 'echo',
      modelId: this.deps.family.id,
      variant: 'echo',
      precision: 'none',
      contextLength: this.options.contextLength,
      vocabSize: this.deps.tokenizer.vocabSize,
    };
  }

  health(): TierHealth {
    return this.ready ? { ready: true } : { ready: false, detail: 'not started' };
  }

  async close(): Promise<void> {
    this.ready = false;
  }
}

const DONE: Promise<IteratorResult<TierEvent>> = Promise.resolve({ value: undefined, done: true });

/**
 * The echo tier's stream: the prompt's tokens (cycling, BOS skipped so the echo reads like the
 * prompt), in batches of up to batchTokens per event without a delay, or one per event after
 * each delay, like a real decoder; then the finish. An iterator of its own rather than an async
 * generator, whose suspend/resume and implicit awaits would be charged to the gateway in
 * `npm run bench:gateway`: this tier exists to measure everything around it.
 */
class EchoStream implements AsyncIterableIterator<TierEvent> {
  private readonly source: readonly number[];
  private readonly start: number;
  private readonly limit: number;
  private readonly perEvent: number;
  private readonly delayMs: number;
  private i = 0;
  /** Set once a stop token ended a batch that still had tokens to send first. */
  private stopNext = false;
  private ended = false;

  constructor(
    private readonly request: GenerateRequest,
    private readonly signal: CancelSignal,
    options: EchoTierConfig,
    bos: number | undefined,
  ) {
    const tokens = request.tokens;
    this.source = tokens.length > 0 ? tokens : [0];
    this.start = tokens[0] === bos && this.source.length > 1 ? 1 : 0;
    const room = options.contextLength - tokens.length;
    this.limit = Math.max(0, Math.min(request.maxTokens, room));
    this.delayMs = options.tokenDelayMs;
    this.perEvent = this.delayMs > 0 ? 1 : Math.max(1, options.batchTokens);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TierEvent> {
    return this;
  }

  next(): Promise<IteratorResult<TierEvent>> {
    if (this.ended) return DONE;
    if (this.stopNext || this.i >= this.limit)
      return Promise.resolve(this.finish(this.stopNext ? 'stop' : 'length'));
    try {
      this.signal.throwIfAborted();
    } catch (err) {
      this.ended = true;
      return Promise.reject(err);
    }
    if (this.delayMs > 0) {
      return sleepUnlessCancelled(this.delayMs, this.signal).then(
        () => this.batch(),
        (err: unknown) => {
          this.ended = true;
          throw err;
        },
      );
    }
    return Promise.resolve(this.batch());
  }

  return(): Promise<IteratorResult<TierEvent>> {
    this.ended = true;
    return DONE;
  }

  private finish(reason: TierFinishReason): IteratorResult<TierEvent> {
    this.ended = true;
    return { value: { kind: 'finish', reason }, done: false };
  }

  /** The next batch of tokens, or the finish when a stop token comes first. */
  private batch(): IteratorResult<TierEvent> {
    const { request, source, start } = this;
    const tokens: number[] = [];
    const logprobs: number[] = [];
    const top: TokenLogprob[][] | undefined = request.topLogprobs > 0 ? [] : undefined;
    for (const end = Math.min(this.limit, this.i + this.perEvent); this.i < end; this.i++) {
      const token = source[start + (this.i % (source.length - start))] ?? 0;
      if (request.stopTokens.includes(token)) {
        this.stopNext = true;
        break;
      }
      tokens.push(token);
      logprobs.push(0);
      top?.push([{ token, logprob: 0 }]);
    }
    if (tokens.length === 0) return this.finish('stop');
    return { value: { kind: 'tokens', tokens, logprobs, top }, done: false };
  }
}
