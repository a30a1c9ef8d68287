/** The Grafana dashboard and its provisioning files fit together (queries are checked live elsewhere). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dashboardQueries, readRepoFile, yamlDocuments } from './deploy-files.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
}

const dashboard = JSON.parse(readRepoFile('deploy/grafana/dashboards/tiergate.json')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};

describe('deploy/grafana', () => {
  it('panels have unique ids and every query panel uses the datasource variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const variables = dashboard.templating.list.map((v) => v.name);
    assert.ok(variables.includes('datasource') && variables.includes('instance'));
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${datasource}', panel.title);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title}: no query`);
      for (const target of panel.targets ?? []) {
        assert.equal(target.datasource?.uid, '${datasource}', panel.title);
        assert.match(target.expr, /instance=~"\$instance"/, `${panel.title}: not filtered by $instance`);
      }
    }
  });

  it('covers what operators watch', () => {
    const all = dashboardQueries()
      .map((q) => q.expr)
      .join('\n');
    for (const metric of [
      'tiergate_requests_total',
      'tiergate_time_to_first_token_seconds_bucket',
      'tiergate_time_per_output_token_seconds_bucket',
      'tiergate_route_decisions_total',
      'tiergate_route_budget_misses_total',
      'tiergate_fallbacks_total',
      'tiergate_breaker_state',
      'tiergate_admission_queue_depth',
      'tiergate_tier_batch_size',
      'tiergate_tokens_total',
      'tiergate_sidecar_restarts_total',
    ]) {
      assert.ok(all.includes(metric), metric);
    }
  });

  it('provisioning points at the Prometheus service and the mounted dashboard folder', () => {
    const [datasources] = yamlDocuments('deploy/grafana/provisioning/datasources/prometheus.yaml');
    const [ds] = datasources?.['datasources'] as { type: string; url: string }[];
    assert.equal(ds?.type, 'prometheus');
    const [providers] = yamlDocuments('deploy/grafana/provisioning/dashboards/tiergate.yaml');
    const [provider] = providers?.['providers'] as { options: { path: string } }[];
    const [compose] = yamlDocuments('deploy/docker-compose.yaml');
    const services = compose?.['services'] as Record<string, { volumes?: string[]; ports?: string[] }>;
    const mounts = services['grafana']?.volumes ?? [];
    assert.ok(
      mounts.includes(`./grafana/dashboards:${provider?.options.path}:ro`),
      'the provider path is where compose mounts deploy/grafana/dashboards',
    );
    const promPort = (services['prometheus']?.ports ?? [])[0]?.split(':')[1];
    assert.equal(ds?.url, `http://prometheus:${promPort}`);
  });
});
