import type { EchoTierConfig } from '../../config/index.js';
import type { TierDeps } from '../registry.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
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

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    const source = request.tokens.length > 0 ? request.tokens : [0];
    // Skip BOS so the echoed text reads like the prompt.
    const start = request.tokens[0] === this.deps.tokenizer.bos && source.length > 1 ? 1 : 0;
    const room = this.options.contextLength - request.tokens.length;
    const limit = Math.max(0, Math.min(request.maxTokens, room));
    for (let i = 0; i < limit; i++) {
      signal.throwIfAborted();
      if (this.options.tokenDelayMs > 0) await sleepUnlessCancelled(this.options.tokenDelayMs, signal);
      const token = source[start + (i % (source.length - start))] ?? 0;
      if (request.stopTokens.includes(token)) {
        yield { kind: 'finish', reason: 'stop' };
        return;
      }
      const top = request.topLogprobs > 0 ? [{ token, logprob: 0 }] : undefined;
      yield { kind: 'token', token, logprob: 0, top };
    }
    yield { kind: 'finish', reason: 'length' };
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
