/**
 * Inference worker entry point: starts TensorFlow.js on the wasm backend, loads the weights and
 * runs one continuous batching engine. tfjs computes synchronously on the thread that calls it,
 * which is why this lives in a worker thread: the gateway's event loop never waits on a forward.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WorkerRuntime } from '../worker-host/worker-runtime.js';
import { DecodeEngine } from './decode-engine.js';
import { loadLlamaWeights, type LlamaWeights } from './llama-weights.js';
import { startWasmBackend } from './wasm-backend.js';
import type { TfjsWorkerData, WorkerReady } from './worker-protocol.js';

if (parentPort === null) throw new Error('tfjs-worker must run in a worker thread');
const init = workerData as TfjsWorkerData;
const runtime = new WorkerRuntime<WorkerReady>(parentPort, init);

async function main(): Promise<void> {
  let backend: Awaited<ReturnType<typeof startWasmBackend>>;
  try {
    backend = await startWasmBackend(init.threads);
  } catch (err) {
    runtime.fatal('TG_TFJS_WORKER_FAILED', `TensorFlow.js wasm backend: ${String(err)}`);
    return;
  }
  let weights: LlamaWeights;
  try {
    weights = loadLlamaWeights(init.modelPath);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    runtime.fatal('TG_TFJS_MODEL_INVALID', `cannot load ${init.modelPath}: ${message}`);
    return;
  }
  const engine = new DecodeEngine(weights, init, runtime.gate, runtime.post);
  await runtime.warmUp(engine, init.contextLength);
  runtime.ready({ shape: weights.shape, threads: backend.threads, simd: backend.simd });
  runtime.serve(engine);
}

void main();
