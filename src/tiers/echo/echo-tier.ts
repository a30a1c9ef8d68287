import type { EchoTierConfig } from '../../config/index.js';
import type { TierDeps } from '../registry.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo, TokenLogprob } from '../tier.js';
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
    // Without a delay, tokens go out in batches of up to batchTokens per event, as a tier with
    // several tokens ready would send them; with one, a token per event, like a real decoder.
    const perEvent = this.options.tokenDelayMs > 0 ? 1 : Math.max(1, this.options.batchTokens);
    let i = 0;
    while (i < limit) {
      signal.throwIfAborted();
      if (this.options.tokenDelayMs > 0) await sleepUnlessCancelled(this.options.tokenDelayMs, signal);
      const tokens: number[] = [];
      const logprobs: number[] = [];
      const top: TokenLogprob[][] | undefined = request.topLogprobs > 0 ? [] : undefined;
      let stopped = false;
      for (const end = Math.min(limit, i + perEvent); i < end; i++) {
        const token = source[start + (i % (source.length - start))] ?? 0;
        if (request.stopTokens.includes(token)) {
          stopped = true;
          break;
        }
        tokens.push(token);
        logprobs.push(0);
        top?.push([{ token, logprob: 0 }]);
      }
      if (tokens.length > 0) yield { kind: 'tokens', tokens, logprobs, top };
      if (stopped) {
        yield { kind: 'finish', reason: 'stop' };
        return;
      }
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
