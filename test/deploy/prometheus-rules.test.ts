/** The shipped Prometheus files pass Debian's promtool: syntax, rule unit tests, config. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEPLOY, PROMTOOL, alertExpressions, readRepoFile, yamlDocuments } from './deploy-files.js';

function promtool(...args: string[]): string {
  const result = spawnSync(PROMTOOL, args, { cwd: join(DEPLOY, 'prometheus'), encoding: 'utf8' });
  const output = `${result.stdout}${result.stderr}`;
  assert.equal(result.status, 0, output);
  return output;
}

describe('deploy/prometheus', () => {
  it('alerts.yaml passes promtool check rules', () => {
    assert.match(promtool('check', 'rules', 'alerts.yaml'), /SUCCESS: \d+ rules found/);
  });

  it('alerts.test.yaml passes promtool test rules', () => {
    assert.match(promtool('test', 'rules', 'alerts.test.yaml'), /SUCCESS/);
  });

  it('every alert has a unit test, a severity and a runbook link into docs/operations.md', () => {
    const tested = readRepoFile('deploy/prometheus/alerts.test.yaml');
    const docs = readRepoFile('docs/operations.md');
    const [doc] = yamlDocuments('deploy/prometheus/alerts.yaml');
    const groups = doc?.['groups'] as {
      rules: { alert: string; labels: { severity?: string }; annotations: { runbook?: string } }[];
    }[];
    const rules = groups.flatMap((g) => g.rules);
    assert.equal(rules.length, alertExpressions().length);
    for (const rule of rules) {
      assert.ok(tested.includes(`alertname: ${rule.alert}`), `${rule.alert}: no promtool test`);
      assert.ok(['critical', 'warning'].includes(rule.labels.severity ?? ''), `${rule.alert}: severity`);
      assert.equal(rule.annotations.runbook, `docs/operations.md#${rule.alert.toLowerCase()}`);
      assert.ok(docs.includes(`### ${rule.alert}\n`), `${rule.alert}: no runbook section`);
    }
  });

  it('prometheus.yml passes promtool check config', () => {
    promtool('check', 'config', 'prometheus.yml');
  });
});
