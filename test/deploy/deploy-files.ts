/** Paths and parsers shared by the deploy tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../helpers/start-gateway.js';

export const DEPLOY = join(REPO_ROOT, 'deploy');
export const PROMTOOL = '/usr/bin/promtool';
export const PROMETHEUS = '/usr/bin/prometheus';

export function readRepoFile(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

/** Every YAML document of a file (Kubernetes manifests hold several, separated by ---). */
export function yamlDocuments(path: string): Record<string, unknown>[] {
  return parseAllDocuments(readRepoFile(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map(String).join('; ')}`);
    return doc.toJS() as Record<string, unknown>;
  });
}

export interface CatalogueEntry {
  readonly type: string;
  readonly labels: Set<string>;
}

/**
 * The metrics catalogue of docs/operations.md: the table rows between its two markers, each
 * `| \`name\` | type | labels | meaning |`, labels comma-separated (`—` for none).
 */
export function readCatalogue(): Map<string, CatalogueEntry> {
  const doc = readRepoFile('docs/operations.md');
  const start = doc.indexOf('<!-- metrics-catalogue:start -->');
  const end = doc.indexOf('<!-- metrics-catalogue:end -->');
  if (start < 0 || end < start) throw new Error('docs/operations.md: catalogue markers missing');
  const entries = new Map<string, CatalogueEntry>();
  for (const line of doc.slice(start, end).split('\n')) {
    const row = /^\| `([a-z_:][a-z0-9_:]*)` \| (\w+) \| ([^|]*) \|/.exec(line);
    if (row === null) continue;
    const [, name = '', type = '', labels = ''] = row;
    const names = labels
      .split(',')
      .map((l) => l.trim().replace(/`/g, ''))
      .filter((l) => l !== '' && l !== '—');
    if (entries.has(name)) throw new Error(`docs/operations.md: ${name} is listed twice`);
    entries.set(name, { type, labels: new Set(names) });
  }
  return entries;
}

/** Every PromQL expression of the Grafana dashboard: panel targets and templating queries. */
export function dashboardQueries(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readRepoFile('deploy/grafana/dashboards/tiergate.json')) as {
    panels: { title: string; targets?: { expr: string }[]; panels?: unknown[] }[];
    templating: { list: { name: string; query?: unknown }[] };
  };
  const queries: { where: string; expr: string }[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) queries.push({ where: panel.title, expr: target.expr });
  }
  for (const variable of dashboard.templating.list) {
    const q = variable.query;
    const text = typeof q === 'object' && q !== null ? (q as { query?: unknown }).query : undefined;
    const m = typeof text === 'string' ? /^label_values\(([^,]+),/.exec(text) : null;
    if (m?.[1] !== undefined) queries.push({ where: `variable ${variable.name}`, expr: m[1] });
  }
  return queries;
}

/** Every alert/recording rule expression of deploy/prometheus/alerts.yaml. */
export function alertExpressions(): { alert: string; expr: string }[] {
  const [doc] = yamlDocuments('deploy/prometheus/alerts.yaml');
  const groups = (doc?.['groups'] ?? []) as { rules: { alert?: string; record?: string; expr: string }[] }[];
  return groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert ?? r.record ?? '?', expr: r.expr })));
}
