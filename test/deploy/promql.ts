/**
 * Just enough PromQL and exposition-format parsing for the deploy tests: which metric names an
 * expression selects, and which metrics (name, type, label names) a /metrics page exports.
 */

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/** Metric names an expression selects (functions, keywords, labels and variables excluded). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = match;
    if (name === undefined || call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

export interface ExportedMetric {
  readonly type: string;
  readonly help: string;
  /** Label names seen on its samples (le and quantile excluded). */
  readonly labels: Set<string>;
}

/** Parses the text exposition format: every metric family with its type, help and label names. */
export function parseExposition(text: string): Map<string, ExportedMetric> {
  const metrics = new Map<string, ExportedMetric>();
  const family = (name: string): ExportedMetric => {
    let m = metrics.get(name);
    if (m === undefined) {
      m = { type: 'untyped', help: '', labels: new Set() };
      metrics.set(name, m);
    }
    return m;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      const m = family(name);
      metrics.set(name, kind === 'TYPE' ? { ...m, type: rest } : { ...m, help: rest });
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (sample === null) continue;
    const [, name = '', labels = ''] = sample;
    const owner = familyOf(name, metrics);
    for (const l of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      if (l[1] !== undefined && l[1] !== 'le' && l[1] !== 'quantile') family(owner).labels.add(l[1]);
    }
  }
  return metrics;
}

/** The family a sample or a PromQL name belongs to: histograms expose _bucket, _sum and _count. */
export function familyOf(name: string, metrics: ReadonlyMap<string, ExportedMetric>): string {
  if (metrics.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const m = metrics.get(base);
  return m !== undefined && (m.type === 'histogram' || m.type === 'summary') ? base : name;
}

/** True when the name is an exported family or a histogram's _bucket/_sum/_count series. */
export function isExported(name: string, metrics: ReadonlyMap<string, ExportedMetric>): boolean {
  return metrics.has(familyOf(name, metrics));
}
