// A failing main tier (fault injection) opens its breaker after the configured volume, traffic
// moves to the next tier; the config file is then edited on disk (fault removed), the reloader
// applies it without a restart, and after the reset timeout the breaker lets main serve again.
// A broken edit is rejected and the running config stays.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/index.js';
import { ConfigReloader, type ReloadResult } from '../../src/config/config-reloader.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { FAMILY_DIR, metricValue } from '../helpers/start-gateway.js';

const RESET_MS = 800;
const dir = mkdtempSync(join(tmpdir(), 'tiergate-resilience-'));
const file = join(dir, 'tiergate.yaml');

function writeConfig(mainFault: Record<string, unknown>): void {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    logging: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
    family: { dir: FAMILY_DIR },
    tiers: {
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, maxBatchSize: 4 },
      edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
    },
    models: { 'tiergate-tiny': { tier: 'main' } },
    resilience: {
      // No budget limit in this test: every failed attempt may move on to edge.
      retryBudget: { ratio: 1, minPerSecond: 100 },
      tiers: {
        main: {
          breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: RESET_MS },
          fault: mainFault,
          fallbacks: ['edge'],
        },
      },
    },
  };
  writeFileSync(file, stringify(config));
}

let server: RunningServer;
let reloader: ConfigReloader;
const results: ReloadResult[] = [];

before(async () => {
  writeConfig({ errorRate: 1 });
  const config = loadConfigFile(file);
  server = await startServer(config, createLogger(config.logging.level));
  reloader = new ConfigReloader(file, server.gateway, createLogger('silent'), (r) => {
    results.push(r);
    server.gateway.resilience.metrics.configReloads.inc({ result: r });
  });
  reloader.watch();
});
after(async () => {
  reloader.close();
  await server.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

async function complete(): Promise<{ status: number; servedBy: string | null }> {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiergate-tiny', prompt: 'The jury said', max_tokens: 4, temperature: 0 }),
  });
  await res.arrayBuffer();
  return { status: res.status, servedBy: res.headers.get('x-tiergate-served-by') };
}

const breakerState = (): Promise<number> => metricValue(server.url, 'tiergate_breaker_state{tier="main"}');

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('failures open the breaker after the volume threshold and traffic moves to edge', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await complete();
    assert.equal(r.status, 200);
    assert.equal(r.servedBy, 'edge', 'main failed before its first token; edge served');
  }
  assert.equal(await breakerState(), 2, 'open after 3 failures of 3');
  const failuresBefore = await metricValue(
    server.url,
    'tiergate_faults_injected_total{tier="main",fault="error"}',
  );
  const r = await complete();
  assert.equal(r.servedBy, 'edge');
  assert.equal(
    await metricValue(server.url, 'tiergate_faults_injected_total{tier="main",fault="error"}'),
    failuresBefore,
    'an open breaker sends nothing to main',
  );
  assert.equal(
    await metricValue(
      server.url,
      'tiergate_fallbacks_total{from="main",to="edge",cause="breaker_open",stage="before_first_token"}',
    ),
    1,
  );
});

test('a broken edit on disk is rejected and the old config stays', async () => {
  writeFileSync(file, 'resilience:\n  tiers:\n    main:\n      fault: { errorRate: 7 }\n');
  await waitFor('the rejected reload', () => results.includes('rejected'));
  assert.equal(await metricValue(server.url, 'tiergate_config_reloads_total{result="rejected"}'), 1);
  assert.equal(server.gateway.config.resilience.tiers.main?.fault?.errorRate, 1);
});

test('an edit on disk (fault removed) applies live; main serves again after the reset timeout', async () => {
  writeConfig({});
  await waitFor('the applied reload', () => results.includes('applied'));
  assert.equal(server.gateway.config.resilience.tiers.main?.fault?.errorRate, undefined);
  await waitFor('half-open', async () => (await breakerState()) === 1);
  const r = await complete();
  assert.equal(r.servedBy, 'main', 'the half-open trial went to main and succeeded');
  assert.equal(await breakerState(), 0, 'closed again');
});
