import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  channelOptions,
  createTierClient,
  unary,
  type InfoResponseMessage,
} from '../../src/tiers/remote/proto-clients.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';

/** A config file with the real llama.cpp edge tier on the family's Q4_K_M GGUF. */
export function edgeWorkerConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-worker-'));
  const file = join(dir, 'tiergate.yaml');
  writeFileSync(
    file,
    [
      `family: { dir: ${join(REPO_ROOT, 'models/tiny')} }`,
      'logging: { level: warn }',
      'server: { shutdownGraceMs: 2000 }',
      'tiers: { edge: { kind: llamacpp, model: tiny-q4_k_m.gguf, threads: 1, sequences: 4 } }',
      'models: { tiergate-tiny: { tier: edge } }',
      '',
    ].join('\n'),
  );
  return file;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly address: string;
  output(): string;
}

/** Spawns the real `tiergate worker` CLI (through tsx) and waits for its "listening" line. */
export async function spawnWorker(configFile: string, tier: string, port = 0): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'worker',
      '--tier',
      tier,
      '--config',
      configFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, TIERGATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`worker exited (${String(code)}) before listening:\n${output}`);
  });
  const listening = (async () => {
    for (;;) {
      const m = /^listening (\S+)$/m.exec(output);
      if (m?.[1] !== undefined) return m[1];
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const address = await Promise.race([listening, exited]);
  return { child, address, output: () => output };
}

/** The worker's Info (with its counters), straight over tier.proto. */
export async function workerInfo(address: string): Promise<InfoResponseMessage> {
  const client = createTierClient(address, channelOptions(10_000));
  try {
    return await unary(client.Info, client, {}, { deadline: new Date(Date.now() + 5_000) });
  } finally {
    client.close();
  }
}

export async function stopWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  await once(w.child, 'exit');
}
