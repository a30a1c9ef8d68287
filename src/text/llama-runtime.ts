import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';

let shared: Promise<Llama> | undefined;

/**
 * The process-wide llama.cpp binding, shared by the tokenizer (a vocab-only load) and the edge
 * tier. CPU only and never built or downloaded at run time: the prebuilt binaries from
 * @node-llama-cpp/linux-x64 are used as installed (scripts/install.sh).
 */
export function llamaRuntime(): Promise<Llama> {
  shared ??= getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  }).catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}
