import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchFile } from '../bench-types.js';
import type { VariantRow } from './variant-rows.js';

/**
 * Charts as SVG, rendered server-side: Vega-Lite specs compiled to Vega and drawn by a headless
 * View (renderer 'none': no canvas or browser; text widths are estimated by Vega).
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const FONT = { config: { font: 'sans-serif', view: { stroke: 'transparent' } } } as const;

/** Aggregate tokens/s against concurrency, one line per target, direct and through the gateway. */
export function throughputSpec(bench: BenchFile): TopLevelSpec {
  const values = bench.targets.flatMap((t) => [
    ...t.direct.map((l) => ({
      target: t.target,
      path: 'direct',
      concurrency: l.concurrency,
      tps: l.tokensPerSec,
    })),
    ...t.gateway.map((l) => ({
      target: t.target,
      path: 'gateway',
      concurrency: l.concurrency,
      tps: l.tokensPerSec,
    })),
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Throughput against concurrency',
    width: 520,
    height: 320,
    data: { values: values.filter((v) => !v.target.startsWith('echo')) },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'concurrency',
        type: 'quantitative',
        scale: { type: 'log', base: 2 },
        title: 'concurrent streams',
      },
      y: { field: 'tps', type: 'quantitative', title: 'generated tokens/s (all streams)' },
      color: { field: 'target', type: 'nominal', title: 'tier@variant' },
      strokeDash: { field: 'path', type: 'nominal', title: 'measured' },
    },
    ...FONT,
  };
}

/** Latency/accuracy of every variant, the Pareto front drawn as a line through its points. */
export function paretoSpec(rows: readonly VariantRow[], front: readonly VariantRow[]): TopLevelSpec {
  const onFront = new Set(front.map((r) => r.target));
  const values = rows
    .filter((r) => r.accuracy !== undefined)
    .map((r) => ({
      target: r.target,
      framework: r.framework,
      latency: r.single.e2eP50Ms,
      accuracy: r.accuracy,
      front: onFront.has(r.target) ? 'Pareto front' : 'dominated',
    }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Latency / accuracy trade-off (concurrency 1)',
    width: 520,
    height: 320,
    data: { values },
    layer: [
      {
        transform: [{ filter: "datum.front === 'Pareto front'" }],
        mark: { type: 'line', color: '#888', strokeDash: [4, 3] },
        encoding: {
          x: { field: 'latency', type: 'quantitative' },
          y: { field: 'accuracy', type: 'quantitative' },
          order: { field: 'latency', type: 'quantitative' },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 80 },
        encoding: {
          x: {
            field: 'latency',
            type: 'quantitative',
            title: 'end-to-end p50 latency (ms)',
            scale: { zero: false },
          },
          y: {
            field: 'accuracy',
            type: 'quantitative',
            title: 'relative accuracy (ppl_ref / ppl)',
            scale: { zero: false },
          },
          color: { field: 'framework', type: 'nominal' },
          shape: { field: 'front', type: 'nominal', title: '' },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 9 },
        encoding: {
          x: { field: 'latency', type: 'quantitative' },
          y: { field: 'accuracy', type: 'quantitative' },
          text: { field: 'target' },
        },
      },
    ],
    ...FONT,
  };
}
