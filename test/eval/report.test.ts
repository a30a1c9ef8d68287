import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { generateReport } from '../../src/eval/report/generate-report.js';
import { parseReportConfig } from '../../src/eval/report/report-config.js';
import { BENCH_FIXTURE, PROFILES_FIXTURE } from './fixtures/measurements.js';

/** Every weight 1, floor 0.97: the expected scores below are worked out by hand from the fixture. */
const CONFIG = parseReportConfig({
  weights: {
    gpuPerformance: 1,
    cpuPerformance: 1,
    edgePerformance: 1,
    accuracyPreservation: 1,
    memoryEfficiency: 1,
    quantizationSupport: 1,
    batchingThroughput: 1,
    easeOfDeployment: 1,
  },
  accuracyFloor: 0.97,
});

// Score = 5 × value / best (higher is better) or 5 × best / value (lower is better).
const EXPECTED: Record<string, Record<string, number>> = {
  pytorch: {
    cpuPerformance: (5 * 100) / 500,
    edgePerformance: (5 * 25) / (50000 / 90),
    accuracyPreservation: 5,
    memoryEfficiency: (5 * 90) / 400,
    quantizationSupport: 0,
    batchingThroughput: (5 * 200) / 800,
    easeOfDeployment: (5 * 90) / 2000,
  },
  onnxruntime: {
    cpuPerformance: 2.5,
    edgePerformance: (5 * (25000 / 150)) / (50000 / 90),
    accuracyPreservation: 4.95,
    memoryEfficiency: 3,
    quantizationSupport: 5,
    batchingThroughput: 3.125,
    easeOfDeployment: 1.125,
  },
  'llama.cpp': {
    cpuPerformance: 5,
    edgePerformance: 5,
    accuracyPreservation: 4.5,
    memoryEfficiency: 5,
    quantizationSupport: 5,
    batchingThroughput: 5,
    easeOfDeployment: 5,
  },
};

/** Parses SVG with a real XML parser (Python's ElementTree) and summarises it. */
function parseSvg(svg: string): { root: string; texts: string[]; marks: number } {
  const script = [
    'import sys, json, xml.etree.ElementTree as ET',
    'root = ET.fromstring(sys.stdin.read())',
    'ns = "{http://www.w3.org/2000/svg}"',
    'texts = [t.text or "" for t in root.iter(ns + "text")]',
    'marks = sum(1 for e in root.iter() if e.tag in (ns + "path", ns + "line", ns + "circle"))',
    'print(json.dumps({"root": root.tag, "texts": texts, "marks": marks}))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: svg, encoding: 'utf8' });
  assert.equal(r.status, 0, `SVG does not parse as XML: ${r.stderr}`);
  return JSON.parse(r.stdout) as { root: string; texts: string[]; marks: number };
}

test('the report turns a fixed measurement file into the expected matrix', async () => {
  const report = await generateReport(BENCH_FIXTURE, PROFILES_FIXTURE, CONFIG, 'tiergate report');
  for (const f of report.matrix.frameworks) {
    if (f.id === 'tensorflow') {
      // The fixture predates the TensorFlow tier: its column is there, unmeasured, with no total.
      assert.equal(f.measured, false);
      assert.equal(f.total, undefined);
      continue;
    }
    const expected = EXPECTED[f.id];
    assert.ok(expected, f.id);
    assert.equal(f.cells.gpuPerformance.score, undefined, 'GPU is never measured here');
    for (const [criterion, score] of Object.entries(expected)) {
      const cell = f.cells[criterion as keyof typeof f.cells];
      assert.ok(
        Math.abs((cell.score ?? NaN) - score) < 1e-9,
        `${f.id} ${criterion}: ${cell.score} != ${score}`,
      );
    }
    const total = Object.values(expected).reduce((a, b) => a + b, 0) / 7;
    assert.ok(Math.abs((f.total ?? NaN) - total) < 1e-9, `${f.id} total ${f.total} != ${total}`);
  }
  const picks = Object.fromEntries(report.recommendations.map((r) => [r.scenario, r.pick?.target]));
  assert.deepEqual(picks, {
    'Real-time (interactive)': 'edge', // edge@gguf-q2_k is faster but below the 0.97 floor
    'High-throughput (batch)': 'edge',
    'CPU-only (cost per token)': 'edge',
    'Accuracy-critical': 'main', // ties with PyTorch FP32 at 1.0, and is faster
    'Edge / memory-constrained': 'edge',
  });
  assert.match(report.markdown, /\| GPU performance \| 1 \| not measured on this machine/);
  assert.match(report.markdown, /Pareto front[^\n]*: edge@gguf-q2_k → edge → main@onnx-int8 → main\./);
});

test('the charts are valid SVG drawn from the data', async () => {
  const report = await generateReport(BENCH_FIXTURE, PROFILES_FIXTURE, CONFIG, 'tiergate report');
  const throughput = parseSvg(report.charts['throughput.svg'] ?? '');
  assert.equal(throughput.root, '{http://www.w3.org/2000/svg}svg');
  assert.ok(throughput.texts.includes('Throughput against concurrency'));
  assert.ok(throughput.texts.includes('main@onnx-int8'), 'legend names every target');
  assert.ok(!throughput.texts.includes('echo'), 'the echo tier is not a framework');
  assert.ok(throughput.marks > 10);
  const pareto = parseSvg(report.charts['pareto.svg'] ?? '');
  assert.equal(pareto.root, '{http://www.w3.org/2000/svg}svg');
  for (const t of ['fallback', 'main', 'edge', 'edge@gguf-q2_k']) assert.ok(pareto.texts.includes(t), t);
});
