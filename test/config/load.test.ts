import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig, ConfigError, loadConfigFile, sha256Hex } from '../../src/config/index.js';

const minimal = { tiers: { echo: { kind: 'echo' } }, models: { m: { tier: 'echo' } } };

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('defaults are filled in, paths resolved and the result deep-frozen', () => {
  const config = buildConfig(minimal, { baseDir: '/srv/tg', env: {} });
  assert.equal(config.server.port, 8080);
  assert.equal(config.server.host, '127.0.0.1');
  assert.equal(config.server.sseCoalesceMs, 16);
  assert.equal(config.auth.enabled, false);
  assert.equal(config.family.dir, '/srv/tg/models/tiny');
  assert.deepEqual(config.tiers.echo, {
    kind: 'echo',
    contextLength: 2048,
    tokenDelayMs: 0,
    batchTokens: 32,
  });
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.server) && Object.isFrozen(config.tiers.echo));
});

test('each tier kind gets its own defaults', () => {
  const config = buildConfig(
    { tiers: { edge: { kind: 'llamacpp' } }, models: { m: { tier: 'edge' } } },
    { env: {} },
  );
  const edge = config.tiers.edge;
  assert.ok(edge?.kind === 'llamacpp');
  assert.equal(edge.threads, 1);
  assert.equal(edge.sequences, 8);
  assert.equal(edge.flashAttention, false);
});

test('errors name the bad path, unknown keys included', () => {
  const problems = problemsOf(() =>
    buildConfig(
      {
        server: { port: 'eighty', colour: 'blue' },
        tiers: {
          edge: { kind: 'llamacpp', threads: -1, flashAttention: 'yes' },
          x: { kind: 'tensorflow' },
        },
        models: { m: { tier: 'edge' } },
      },
      { env: {} },
    ),
  );
  const text = problems.join('\n');
  assert.match(text, /\/tiers\/edge\/flashAttention: Expected a boolean or "auto" \(got "yes"\)/);
  assert.match(text, /\/server\/port/);
  assert.match(text, /\/server\/colour/);
  assert.match(text, /\/tiers\/edge\/threads/);
  assert.match(text, /\/tiers\/x\/kind: must be one of echo, llamacpp, onnx, remote/);
});

test('served models must point at a configured tier', () => {
  const problems = problemsOf(() =>
    buildConfig({ ...minimal, models: { m: { tier: 'main' } } }, { env: {} }),
  );
  assert.match(problems.join('\n'), /\/models\/m\/tier: no tier named "main" \(tiers: echo\)/);
});

test('environment overrides port, host and log level, and are validated too', () => {
  const config = buildConfig(minimal, {
    env: {
      TIERGATE_PORT: '9999',
      TIERGATE_HOST: '0.0.0.0',
      TIERGATE_LOG_LEVEL: 'warn',
      TIERGATE_GRPC_PORT: '9998',
    },
  });
  assert.equal(config.server.port, 9999);
  assert.equal(config.grpc.port, 9998);
  const badGrpc = problemsOf(() => buildConfig(minimal, { env: { TIERGATE_GRPC_PORT: 'nine' } }));
  assert.match(badGrpc.join('\n'), /\/grpc\/port/);
  assert.equal(config.server.host, '0.0.0.0');
  assert.equal(config.logging.level, 'warn');
  const problems = problemsOf(() => buildConfig(minimal, { env: { TIERGATE_LOG_LEVEL: 'loud' } }));
  assert.match(problems.join('\n'), /\/logging\/level/);
});

test('API keys: plain keys and env keys are hashed; enabled auth needs a usable key', () => {
  const config = buildConfig(
    {
      ...minimal,
      auth: {
        enabled: true,
        keys: [
          { name: 'a', key: 'sk-plain-1234' },
          { name: 'b', env: 'MY_KEY', scopes: ['admin'] },
        ],
      },
    },
    { env: { MY_KEY: 'sk-from-env-5678' } },
  );
  assert.equal(config.auth.keys[0]?.sha256, sha256Hex('sk-plain-1234'));
  assert.equal(config.auth.keys[0]?.key, undefined);
  assert.equal(config.auth.keys[1]?.sha256, sha256Hex('sk-from-env-5678'));
  const problems = problemsOf(() =>
    buildConfig(
      { ...minimal, auth: { enabled: true, keys: [{ name: 'b', env: 'UNSET_VAR' }] } },
      { env: {} },
    ),
  );
  assert.match(problems.join('\n'), /UNSET_VAR is not set/);
});

test('YAML files: syntax errors and relative paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-config-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'server: [unclosed\n');
  assert.match(problemsOf(() => loadConfigFile(bad)).join('\n'), /not valid YAML/);
  const good = join(dir, 'good.yaml');
  writeFileSync(
    good,
    'family: { dir: ./fam }\ntiers: { echo: { kind: echo } }\nmodels: { m: { tier: echo } }\n',
  );
  assert.equal(loadConfigFile(good, { env: {} }).family.dir, join(dir, 'fam'));
});

test('the shipped config files are valid', () => {
  const dev = loadConfigFile('config/tiergate.yaml', { env: {} });
  assert.ok(dev.models['tiergate-tiny']);
  const prod = loadConfigFile('config/tiergate.production.yaml', {
    env: { TIERGATE_API_KEY: 'sk-a-123456', TIERGATE_ADMIN_KEY: 'sk-b-123456' },
  });
  assert.equal(prod.auth.enabled, true);
  // The small family's serving and report configs (its files are derived, not needed to validate).
  const small = loadConfigFile('config/small.yaml', { env: {} });
  assert.equal(small.routing.byModel['tiergate-small'], 'balanced');
  assert.ok(loadConfigFile('reports/small/tiergate-bench.yaml', { env: {} }).tiers['main']);
});

test('problems under auth name the path and the type, never the value', () => {
  const secret = 'sk-live-do-not-print-0123456789';
  const problems = problemsOf(() =>
    buildConfig(
      {
        ...minimal,
        auth: {
          enabled: true,
          keys: [
            { name: 'a', key: 'sk-fine-12345678' },
            // A key written as a bare list item, one under a mistyped field, one too short.
            secret,
            { name: 'b', kee: secret },
            { name: 'c', key: 'sk-1' },
          ],
        },
      },
      { env: {} },
    ),
  );
  const text = problems.join('\n');
  assert.match(text, /\/auth\/keys\/1: Expected object \(got a string, value redacted\)/);
  assert.match(text, /\/auth\/keys\/2\/kee: .*\(got a string, value redacted\)/);
  assert.match(text, /\/auth\/keys\/3\/key: .*\(got a string, value redacted\)/);
  assert.ok(!text.includes(secret) && !text.includes('sk-1'), text);
  // Elsewhere the value still helps.
  assert.match(
    problemsOf(() => buildConfig({ ...minimal, server: { port: 'eighty' } }, { env: {} })).join(),
    /"eighty"/,
  );
});

test('a YAML syntax error names the line and column without quoting the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-config-'));
  const file = join(dir, 'bad.yaml');
  const secret = 'sk-live-in-a-broken-line-0123';
  writeFileSync(file, `auth:\n  keys:\n    - name: a\n      key: ${secret}: x\n`);
  const text = problemsOf(() => loadConfigFile(file, { env: {} })).join('\n');
  assert.match(text, /not valid YAML: .* at line 4, column \d+$/);
  assert.ok(!text.includes(secret), text);
});

test('connection timeouts have production defaults, and headers must fit in the request time', () => {
  const config = buildConfig(minimal, { env: {} });
  assert.ok(config.server.headersTimeoutMs <= config.server.requestTimeoutMs);
  assert.ok(config.server.connectionsCheckingIntervalMs <= config.server.headersTimeoutMs);
  assert.ok(config.server.keepAliveTimeoutMs > 0);
  const problems = problemsOf(() =>
    buildConfig({ ...minimal, server: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }, { env: {} }),
  );
  assert.match(problems.join('\n'), /\/server\/headersTimeoutMs: must not exceed/);
  // requestTimeoutMs 0 turns the whole-request limit off.
  buildConfig({ ...minimal, server: { headersTimeoutMs: 5000, requestTimeoutMs: 0 } }, { env: {} });
});

test('limits.byKey names must be keys of auth.keys (or anonymous)', () => {
  const auth = { enabled: true, keys: [{ name: 'alice', key: 'sk-alice-0000001' }] };
  const ok = buildConfig(
    {
      ...minimal,
      auth,
      limits: { byKey: { alice: { requestsPerMinute: 5 }, anonymous: { requestsPerMinute: 1 } } },
    },
    { env: {} },
  );
  assert.equal(ok.limits.byKey.alice?.requestsPerMinute, 5);
  const problems = problemsOf(() =>
    buildConfig({ ...minimal, auth, limits: { byKey: { alcie: { requestsPerMinute: 5 } } } }, { env: {} }),
  );
  assert.deepEqual(problems, [
    '/limits/byKey/alcie: no API key named "alcie" in auth.keys (names: "alice"; "anonymous" is the key of requests without one)',
  ]);
});
