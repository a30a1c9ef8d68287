/**
 * The family's LLaMA in TensorFlow.js on this thread, without the tier around it: the forward of
 * src/tiers/tfjs/llama-forward.ts over weights read from a GGUF F32/F16 file. Used by the model
 * build (the tensorflow-fp32 perplexity), verify and bench:baselines (the plain decode loop the
 * tier is compared to); the gateway's tfjs tier runs the same forward in worker threads.
 */
import { causalBias, disposeKv, forward, type KvTensors } from '../../src/tiers/tfjs/llama-forward.js';
import { disposeWeights, loadLlamaWeights, type LlamaWeights } from '../../src/tiers/tfjs/llama-weights.js';
import { startWasmBackend } from '../../src/tiers/tfjs/wasm-backend.js';
import { logSoftmaxAt } from './onnx-decoder.js';

export class TfjsRunner {
  private constructor(private readonly weights: LlamaWeights) {}

  static async load(path: string): Promise<TfjsRunner> {
    await startWasmBackend(1);
    return new TfjsRunner(loadLlamaWeights(path));
  }

  get vocab(): number {
    return this.weights.shape.vocabSize;
  }

  /** Log-probability of each token after the first, from one forward over the whole sequence. */
  logprobs(tokens: readonly number[]): Float64Array {
    const T = tokens.length;
    const out = forward(this.weights, {
      ids: Int32Array.from(tokens),
      rows: 1,
      steps: T,
      positions: Int32Array.from(tokens, (_, i) => i),
      bias: causalBias(this.weights.shape, T),
      logits: 'all',
    });
    disposeKv(out.present);
    const V = this.vocab;
    const lp = new Float64Array(T - 1);
    for (let t = 0; t + 1 < T; t++) lp[t] = logSoftmaxAt(out.logits, t * V, V, tokens[t + 1] as number);
    return lp;
  }

  /**
   * Greedy decoding with the KV cache kept as tensors, one token per forward: the plain loop.
   * `onToken` sees each token as it is chosen (a benchmark times them).
   */
  greedy(prompt: readonly number[], count: number, onToken?: (token: number) => void): number[] {
    const s = this.weights.shape;
    const rep = s.heads / s.kvHeads;
    let step = forward(this.weights, {
      ids: Int32Array.from(prompt),
      rows: 1,
      steps: prompt.length,
      positions: Int32Array.from(prompt, (_, i) => i),
      bias: causalBias(s, prompt.length),
      logits: 'last',
    });
    const tokens: number[] = [];
    let past: KvTensors = step.present;
    for (;;) {
      const next = argmaxOf(step.logits);
      tokens.push(next);
      onToken?.(next);
      if (tokens.length >= count) break;
      const position = prompt.length + tokens.length - 1;
      step = forward(this.weights, {
        ids: Int32Array.of(next),
        rows: 1,
        steps: 1,
        positions: Int32Array.of(position),
        // One new token attends to every cached one and itself: no mask.
        bias: new Float32Array(rep * (position + 1)),
        past,
        logits: 'last',
      });
      disposeKv(past);
      past = step.present;
    }
    disposeKv(past);
    return tokens;
  }

  dispose(): void {
    disposeWeights(this.weights);
  }
}

function argmaxOf(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if ((logits[i] as number) > (logits[best] as number)) best = i;
  return best;
}

/** Validation perplexity on the eval slice's windows (every token after each window's first). */
export function tfjsPerplexity(
  runner: TfjsRunner,
  windows: readonly (readonly number[])[],
): { perplexity: number; tokens: number } {
  let nll = 0;
  let tokens = 0;
  for (const w of windows) {
    for (const lp of runner.logprobs(w)) nll -= lp;
    tokens += w.length - 1;
  }
  return { perplexity: Math.exp(nll / tokens), tokens };
}
