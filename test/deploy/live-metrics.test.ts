/**
 * Everything in deploy/ and the metrics catalogue is checked against the /metrics page of a real
 * gateway (one tier of every kind), and Debian's real Prometheus scrapes it with the shipped
 * alert rules loaded.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { TestGateway } from '../helpers/start-gateway.js';
import {
  DEPLOY,
  PROMETHEUS,
  PROMTOOL,
  alertExpressions,
  dashboardQueries,
  readCatalogue,
} from './deploy-files.js';
import { exercise, metricsText, startAllTierKinds } from './live-gateway.js';
import { isExported, metricNames, parseExposition, type ExportedMetric } from './promql.js';

let gateway: TestGateway;
let text: string;
let exported: Map<string, ExportedMetric>;

before(async () => {
  gateway = await startAllTierKinds();
  await exercise(gateway);
  // tier_ready is refreshed by readiness probes, as the kubelet's would.
  await fetch(`${gateway.baseUrl}/readyz`);
  text = await metricsText(gateway.baseUrl);
  exported = parseExposition(text);
});

after(async () => {
  await gateway.shutdown();
});

describe('the gateway /metrics page', () => {
  it('passes promtool check metrics', () => {
    const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
  });

  it('exports only tiergate_-prefixed metrics', () => {
    const foreign = [...exported.keys()].filter((n) => !n.startsWith('tiergate_'));
    assert.deepEqual(foreign, []);
  });
});

describe('the metrics catalogue (docs/operations.md)', () => {
  it('lists every exported metric, and nothing else', () => {
    const catalogue = readCatalogue();
    const missing = [...exported.keys()].filter((n) => !catalogue.has(n));
    const stale = [...catalogue.keys()].filter((n) => !exported.has(n));
    assert.deepEqual({ missing, stale }, { missing: [], stale: [] });
  });

  it('states each metric type and every label it carries', () => {
    const catalogue = readCatalogue();
    for (const [name, metric] of exported) {
      const entry = catalogue.get(name);
      assert.ok(entry, name);
      assert.equal(entry.type, metric.type, `${name}: type`);
      for (const label of metric.labels) assert.ok(entry.labels.has(label), `${name}: label ${label}`);
    }
  });
});

describe('deploy/ queries', () => {
  it('every Grafana dashboard query names exported metrics only', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length > 20, 'the dashboard has its queries');
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(isExported(name, exported), `${where}: ${name} is not exported`);
    }
  });

  it('every alert rule names exported metrics only (besides Prometheus own up)', () => {
    for (const { alert, expr } of alertExpressions()) {
      for (const name of metricNames(expr)) {
        assert.ok(name === 'up' || isExported(name, exported), `${alert}: ${name} is not exported`);
      }
    }
  });
});

describe('a real Prometheus scraping the gateway', () => {
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let api: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tiergate-prometheus-'));
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    const target = new URL(gateway.baseUrl).host;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(DEPLOY, 'prometheus/alerts.yaml')],
        scrape_configs: [{ job_name: 'tiergate', static_configs: [{ targets: [target] }] }],
      }),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
  });

  after(async () => {
    if (prometheus?.exitCode === null) {
      const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads tiergate metrics back through the HTTP API', async () => {
    const result = await pollQuery(api, 'tiergate_tokens_total{tier="edge",type="output"}');
    assert.equal(result.length, 1);
    assert.equal(result[0]?.metric['job'], 'tiergate');
    assert.ok(Number(result[0]?.value[1]) > 0, 'the edge tier generated tokens');
  });

  it('runs every Grafana dashboard query without an error, and most return data', async () => {
    await pollQuery(api, 'tiergate_tier_start_seconds');
    let withData = 0;
    const queries = dashboardQueries();
    for (const { where, expr } of queries) {
      // Grafana's variables, as Grafana would substitute them.
      const query = expr
        .replaceAll('$instance', '.*')
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$__range', '5m');
      const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { result: unknown[] };
      };
      assert.equal(body.status, 'success', `${where}: ${body.error} in ${query}`);
      if ((body.data?.result.length ?? 0) > 0) withData += 1;
    }
    // Rates need two scrapes and some series (fallbacks, shed, ...) only appear under failures.
    assert.ok(withData >= queries.length / 3, `${withData} of ${queries.length} queries returned data`);
  });

  it('loads the shipped alert rules', async () => {
    const response = await fetch(`${api}/api/v1/rules`);
    const body = (await response.json()) as {
      data: { groups: { rules: { name: string; health: string }[] }[] };
    };
    const rules = body.data.groups.flatMap((g) => g.rules);
    for (const rule of rules) assert.notEqual(rule.health, 'err', `${rule.name} fails to evaluate`);
    assert.deepEqual(
      rules.map((r) => r.name).sort(),
      alertExpressions()
        .map((r) => r.alert)
        .sort(),
    );
  });
});

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Queries until the series appears (the first scrapes take a second or two), at most ~60 s. */
async function pollQuery(api: string, query: string): Promise<Sample[]> {
  let last = '';
  for (let i = 0; i < 240; i++) {
    try {
      const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await response.json()) as { status: string; data?: { result: Sample[] } };
      if (body.status === 'success' && (body.data?.result.length ?? 0) > 0) return body.data?.result ?? [];
      last = JSON.stringify(body);
    } catch (err) {
      last = String(err); // Prometheus not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no result for ${query}: ${last}`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
