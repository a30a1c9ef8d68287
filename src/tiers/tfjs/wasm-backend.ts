/**
 * Starts TensorFlow.js on its WebAssembly backend (XNNPACK kernels, the CPU library of
 * TensorFlow Lite) in the calling thread. docs/tf-tier.md says why this backend and not
 * tfjs-node, and what the thread count does in Node.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

export interface WasmBackendInfo {
  /** Threads the backend computes with (1 unless the threaded build runs). */
  readonly threads: number;
  readonly simd: boolean;
  /** Whether tfjs allows its threaded wasm build in this runtime. */
  readonly multithreadSupported: boolean;
}

/**
 * `threads` is passed to the backend's setThreadsCount. tfjs 4.22 uses its threaded build only
 * where WASM_HAS_MULTITHREAD_SUPPORT holds, and that flag is false under Node
 * (node_modules/@tensorflow/tfjs-backend-wasm/dist/flags_wasm.js); forcing it makes emscripten
 * start its pthreads from blob: URLs, which Node's worker_threads refuse (ERR_WORKER_PATH). So in
 * Node the backend runs one thread whatever is asked, and the tier reports the effective count.
 */
export async function startWasmBackend(threads: number): Promise<WasmBackendInfo> {
  if (threads > 1) setThreadsCount(threads);
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('the TensorFlow.js wasm backend failed to start');
  await tf.ready();
  const env = tf.env();
  return {
    threads: getThreadsCount(),
    simd: (await env.getAsync('WASM_HAS_SIMD_SUPPORT')) === true,
    multithreadSupported: (await env.getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true,
  };
}
