/**
 * Inference worker entry point: owns one ONNX Runtime session and its continuous batching
 * engine. session.run() blocks the thread it runs on, which is why this lives in a worker
 * thread: the gateway's event loop never waits on inference. Every native call (the session's
 * load and each run) goes through the run gate, so the main thread never terminates this thread
 * inside one (src/tiers/worker-host/run-gate.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { WorkerRuntime } from '../worker-host/worker-runtime.js';
import { DecodeEngine } from './decode-engine.js';
import { readDecoderSpec, type DecoderSpec } from './decoder-spec.js';
import { OnnxTierError } from './onnx-tier-error.js';
import type { OnnxWorkerData } from './worker-protocol.js';

if (parentPort === null) throw new Error('onnx-worker must run in a worker thread');
const init = workerData as OnnxWorkerData;
const runtime = new WorkerRuntime<DecoderSpec>(parentPort, init);

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await runtime.gate.run('load', 1, () =>
      ort.InferenceSession.create(init.modelPath, {
        intraOpNumThreads: init.intraOpThreads,
        // One graph at a time per worker: parallelism comes from batching and the worker pool.
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      }),
    );
  } catch (err) {
    runtime.fatal('TG_ONNX_NOT_A_DECODER', `cannot load ${init.modelPath}: ${String(err)}`);
    return;
  }
  let engine: DecodeEngine;
  try {
    const spec = readDecoderSpec(session.inputMetadata, session.outputMetadata, init.modelPath);
    engine = new DecodeEngine(session, spec, init, runtime.gate, runtime.post);
    await runtime.warmUp(engine, init.contextLength);
    runtime.ready(spec);
  } catch (err) {
    const code = err instanceof OnnxTierError ? err.code : 'TG_ONNX_WORKER_FAILED';
    runtime.fatal(code, err instanceof Error ? err.message : String(err));
    await session.release();
    return;
  }
  runtime.serve(engine);
}

void main();
