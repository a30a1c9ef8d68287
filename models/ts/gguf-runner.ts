/**
 * Runs a tiergate GGUF file in node-llama-cpp (prebuilt CPU binaries, no build, no download) for
 * the model build (perplexity), verify, tests and the model benchmark. Raw logits come from
 * `controlledEvaluate` with `generateNext.logits`, so every comparison with PyTorch / ONNX is on
 * logits rather than on sampled tokens. The gateway's llama.cpp tier has its own runtime.
 */
import {
  getLlama,
  LlamaLogLevel,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';

let llamaPromise: Promise<Llama> | undefined;

/** One shared llama.cpp binding per process (loading it twice wastes memory and time). */
export function sharedLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  return llamaPromise;
}

export interface GgufRunnerOptions {
  /** llama.cpp threads; 1 by default (on 2 shared cores 2 threads can be far slower: docs/models.md). */
  readonly threads?: number;
  readonly contextSize?: number;
  /** llama.cpp's flash-attention kernel; absent lets llama.cpp choose (as the model build did). */
  readonly flashAttention?: boolean;
}

const WANT_LOGITS = { generateNext: { logits: true } } as const;

/** Dense Float32Array of `vocab` logits from node-llama-cpp's token -> logit map. */
function dense(map: Map<Token, number>, vocab: number): Float32Array {
  const out = new Float32Array(vocab).fill(-Infinity);
  for (const [tok, v] of map) out[tok] = v;
  return out;
}

export class GgufRunner {
  private constructor(
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
  ) {}

  static async load(modelPath: string, opts: GgufRunnerOptions = {}): Promise<GgufRunner> {
    const llama = await sharedLlama();
    const model = await llama.loadModel({ modelPath });
    const contextSize = opts.contextSize ?? 512;
    const context = await model.createContext({
      contextSize,
      batchSize: contextSize,
      sequences: 1,
      threads: opts.threads ?? 1,
      ...(opts.flashAttention === undefined ? {} : { flashAttention: opts.flashAttention }),
    });
    return new GgufRunner(model, context, context.getSequence());
  }

  /** The single sequence, emptied: every call starts from an empty context. */
  private async fresh(): Promise<LlamaContextSequence> {
    await this.sequence.clearHistory();
    return this.sequence;
  }

  /**
   * Raw next-token logits after each of `tokens` (from an empty context), as dense arrays of
   * `vocab` floats; `positions` selects which positions to return (default: all), in order.
   */
  async logits(
    tokens: readonly number[],
    vocab: number,
    positions?: ReadonlySet<number>,
  ): Promise<Float32Array[]> {
    const seq = await this.fresh();
    const want = (i: number): boolean => positions === undefined || positions.has(i);
    const items: ControlledEvaluateInputItem[] = tokens.map((t, i) =>
      want(i) ? [t as Token, WANT_LOGITS] : (t as Token),
    );
    const out = await seq.controlledEvaluate(items);
    const result: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i++) {
      if (!want(i)) continue;
      const map = out[i]?.next.logits;
      if (map === undefined) throw new Error(`no logits for position ${i}`);
      result.push(dense(map, vocab));
    }
    return result;
  }

  /** Greedy continuation (argmax of raw logits, lowest id on ties); EOS does not stop it. */
  async greedy(prompt: readonly number[], count: number, vocab: number): Promise<number[]> {
    const seq = await this.fresh();
    let items: ControlledEvaluateInputItem[] = prompt.map((t, i) =>
      i === prompt.length - 1 ? [t as Token, WANT_LOGITS] : (t as Token),
    );
    const out: number[] = [];
    while (out.length < count) {
      const res = await seq.controlledEvaluate(items);
      const map = res[items.length - 1]?.next.logits;
      if (map === undefined) throw new Error('no logits');
      const logits = dense(map, vocab);
      let best = 0;
      for (let tok = 1; tok < vocab; tok++)
        if ((logits[tok] as number) > (logits[best] as number)) best = tok;
      out.push(best);
      items = [[best as Token, WANT_LOGITS]];
    }
    return out;
  }

  /** Greedy decode through node-llama-cpp's own sampler (temperature 0) for speed measurement;
   * returns the number of tokens generated (EOS is yielded, not a stop). */
  async decodeSpeed(prompt: readonly number[], count: number): Promise<number> {
    return (await this.decode(prompt, count)).length;
  }

  /** The tokens of a greedy decode through node-llama-cpp's own sampler (EOS included). */
  async decode(prompt: readonly number[], count: number): Promise<number[]> {
    const seq = await this.fresh();
    const out: number[] = [];
    for await (const token of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(token);
      if (out.length >= count) break;
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}
