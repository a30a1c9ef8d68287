/**
 * Inference worker entry point: owns one ONNX Runtime session and its continuous batching
 * engine. session.run() blocks the thread it runs on, which is why this lives in a worker
 * thread: the gateway's event loop never waits on inference.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { DecodeEngine } from './decode-engine.js';
import { readDecoderSpec } from './decoder-spec.js';
import { OnnxTierError } from './onnx-tier-error.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './worker-protocol.js';

if (parentPort === null) throw new Error('onnx-worker must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerInit;
const post = (message: WorkerToMain): void => {
  if (message.type === 'scored') port.postMessage(message, [message.logprobs.buffer as ArrayBuffer]);
  else port.postMessage(message);
};

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(init.modelPath, {
      intraOpNumThreads: init.intraOpThreads,
      // One graph at a time per worker: parallelism comes from batching and the worker pool.
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    post({
      type: 'fatal',
      code: 'TG_ONNX_NOT_A_DECODER',
      message: `cannot load ${init.modelPath}: ${String(err)}`,
    });
    return;
  }
  let engine: DecodeEngine;
  try {
    const spec = readDecoderSpec(session.inputMetadata, session.outputMetadata, init.modelPath);
    engine = new DecodeEngine(session, spec, init, post);
    post({ type: 'ready', spec });
  } catch (err) {
    const code = err instanceof OnnxTierError ? err.code : 'TG_ONNX_WORKER_FAILED';
    post({ type: 'fatal', code, message: err instanceof Error ? err.message : String(err) });
    await session.release();
    return;
  }
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
