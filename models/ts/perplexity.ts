/**
 * Validation perplexity of a GGUF or ONNX variant on the eval slice: exp(mean negative log-likelihood)
 * of every token after the first of each window, from raw logits (log-softmax in float64).
 */
import { GgufRunner } from './gguf-runner.js';
import { OnnxDecoder, logSoftmaxAt } from './onnx-decoder.js';

export interface PerplexityResult {
  readonly perplexity: number;
  readonly tokens: number;
}

function logSoftmaxDense(logits: Float32Array, target: number): number {
  return logSoftmaxAt(logits, 0, logits.length, target);
}

export async function ggufPerplexity(
  runner: GgufRunner,
  windows: readonly (readonly number[])[],
  vocab: number,
): Promise<PerplexityResult> {
  let nll = 0;
  let tokens = 0;
  for (const w of windows) {
    const positions = new Set(w.slice(0, -1).map((_, i) => i));
    const logits = await runner.logits(w, vocab, positions);
    logits.forEach((l, i) => {
      nll -= logSoftmaxDense(l, w[i + 1] as number);
      tokens++;
    });
  }
  return { perplexity: Math.exp(nll / tokens), tokens };
}

export async function onnxPerplexity(
  decoder: OnnxDecoder,
  windows: readonly (readonly number[])[],
  batch = 4,
): Promise<PerplexityResult> {
  let nll = 0;
  let tokens = 0;
  for (let s = 0; s < windows.length; s += batch) {
    const rows = windows.slice(s, s + batch);
    const res = await decoder.step(rows);
    rows.forEach((w, b) => {
      for (let t = 0; t + 1 < w.length; t++) {
        nll -= logSoftmaxAt(res.logits, (b * res.seq + t) * res.vocab, res.vocab, w[t + 1] as number);
        tokens++;
      }
    });
  }
  return { perplexity: Math.exp(nll / tokens), tokens };
}
