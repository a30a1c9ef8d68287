/**
 * Reference log-probabilities from the family's ONNX FP32 export, computed directly with
 * onnxruntime-node (one full forward pass with an empty KV cache; docs/main-tier.md decoder I/O).
 */
import ort from 'onnxruntime-node';
import { logSoftmax } from '../../../src/text/sampling.js';

export async function onnxScore(modelPath: string, tokens: readonly number[]): Promise<Float64Array> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  try {
    const n = tokens.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
    };
    for (const meta of session.inputMetadata) {
      if (!meta.name.startsWith('past_key_values.') || !meta.isTensor) continue;
      // Static head count and head size, zero-length past: [1, kv_heads, 0, head_dim].
      const [, heads, , dim] = meta.shape as [unknown, number, unknown, number];
      feeds[meta.name] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, dim]);
    }
    const out = await session.run(feeds, ['logits']);
    const logits = out.logits!.data as Float32Array;
    const vocab = logits.length / n;
    const result = new Float64Array(n - 1);
    for (let i = 1; i < n; i++) {
      const row = logSoftmax(logits.subarray((i - 1) * vocab, i * vocab));
      result[i - 1] = row[tokens[i] as number] as number;
    }
    return result;
  } finally {
    await session.release();
  }
}
