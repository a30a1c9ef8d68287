/**
 * A real gateway with one tier of every kind, so every series tiergate can export is registered:
 * echo, the llama.cpp edge tier and the ONNX main tier on the committed tiny model, a remote tier
 * and a balanced remote tier whose addresses have no server (they register the remote-tier series
 * and report not ready, which is exactly what a gateway with a down sidecar exposes).
 */
import { startGateway, type TestGateway } from '../helpers/start-gateway.js';

export function allTierKindsConfig(): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    tiers: {
      echo: { kind: 'echo', contextLength: 256 },
      edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
      main: { kind: 'onnx', model: 'tiny-fp32.onnx', workers: 1, intraOpThreads: 1 },
      // Port 1 on loopback: nothing listens, so the remote tier stays down without a sidecar.
      fallback: { kind: 'remote', address: '127.0.0.1:1', connectTimeoutMs: 200, healthIntervalMs: 500 },
      // Several addresses make a balanced remote tier (tiergate worker replicas), with its own series.
      pool: {
        kind: 'remote',
        addresses: ['127.0.0.1:1', '127.0.0.1:2'],
        connectTimeoutMs: 200,
        healthIntervalMs: 500,
      },
    },
    models: {
      'tiergate-echo': { tier: 'echo' },
      'tiergate-tiny': { tier: 'edge' },
      'tiergate-tiny-main': { tier: 'main' },
      'tiergate-tiny-fallback': { tier: 'fallback' },
      'tiergate-tiny-pool': { tier: 'pool' },
    },
  };
}

export async function startAllTierKinds(): Promise<TestGateway> {
  return startGateway(allTierKindsConfig());
}

/** Sends one request to each local tier so per-tier series have samples (not only HELP/TYPE). */
export async function exercise(gateway: TestGateway): Promise<void> {
  for (const model of ['tiergate-echo', 'tiergate-tiny', 'tiergate-tiny-main']) {
    await gateway.client.completions.create({ model, prompt: 'The city', max_tokens: 4, temperature: 0 });
  }
}

export async function metricsText(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}
