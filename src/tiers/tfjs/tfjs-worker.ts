/**
 * Inference worker entry point: starts TensorFlow.js on the wasm backend, loads the weights and
 * runs one continuous batching engine. tfjs computes synchronously on the thread that calls it,
 * which is why this lives in a worker thread: the gateway's event loop never waits on a forward.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DecodeEngine } from './decode-engine.js';
import { loadLlamaWeights, type LlamaWeights } from './llama-weights.js';
import { startWasmBackend } from './wasm-backend.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './worker-protocol.js';

if (parentPort === null) throw new Error('tfjs-worker must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
const post = (message: WorkerToMain): void => {
  if (message.type === 'scored') port.postMessage(message, [message.logprobs.buffer as ArrayBuffer]);
  else port.postMessage(message);
};

async function main(): Promise<void> {
  let backend: Awaited<ReturnType<typeof startWasmBackend>>;
  try {
    backend = await startWasmBackend(init.threads);
  } catch (err) {
    post({
      type: 'fatal',
      code: 'TG_TFJS_WORKER_FAILED',
      message: `TensorFlow.js wasm backend: ${String(err)}`,
    });
    return;
  }
  let weights: LlamaWeights;
  try {
    weights = loadLlamaWeights(init.modelPath);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    post({
      type: 'fatal',
      code: 'TG_TFJS_MODEL_INVALID',
      message: `cannot load ${init.modelPath}: ${message}`,
    });
    return;
  }
  const engine = new DecodeEngine(weights, init, post);
  post({ type: 'ready', ready: { shape: weights.shape, threads: backend.threads, simd: backend.simd } });
  port.on('message', (message: MainToWorker) => {
    switch (message.type) {
      case 'generate':
        engine.submit(message.request);
        break;
      case 'cancel':
        engine.cancel(message.id);
        break;
      case 'score':
        engine.score(message.id, message.tokens);
        break;
      case 'close':
        engine.close();
        port.close();
        break;
    }
  });
}

void main();
