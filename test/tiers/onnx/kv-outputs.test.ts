// The two KV output forms the tier runs (src/tiers/onnx/decoder-spec.ts): tiny's committed
// decoders output only the new positions ("append": the tier keeps its cache in place, with
// spare columns it re-packs when they run out), and the same weights exported with
// `export_onnx.py --kv-io present` follow the optimum convention (present = past + new). Both
// must decode the same tokens, alone and in a batch, across several spare-column re-packs, and
// in kept sequences whose cache grows one token at a time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { readDecoderSpec } from '../../../src/tiers/onnx/decoder-spec.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { FAMILY_DIR, collect, makeTier, readGolden, request } from './helpers.js';

const golden = readGolden();
/** More than the engine's spare columns (32) twice over: steps re-pack when they run out. */
const TOKENS = 80;
const dir = mkdtempSync(join(tmpdir(), 'tiergate-kv-io-'));
const presentFile = join(dir, 'tiny-fp32.onnx');
let append: OnnxTier;
let present: OnnxTier;

before(async () => {
  const scripts = resolve('models/scripts');
  const r = spawnSync(
    '/usr/bin/python3',
    [
      'export_onnx.py',
      '--kv-io',
      'present',
      '--gguf',
      resolve(FAMILY_DIR, 'tiny-f32.gguf'),
      '--out',
      presentFile,
    ],
    {
      cwd: scripts,
      encoding: 'utf8',
      env: { ...process.env, TIERGATE_FAMILY_FILE: resolve('models/families/tiny.json') },
    },
  );
  assert.equal(r.status, 0, r.stderr);
  append = makeTier('tiny-fp32.onnx', { maxBatchSize: 8, maxQueueDelayMs: 20 });
  present = makeTier(presentFile, { maxBatchSize: 8, maxQueueDelayMs: 20 });
  await Promise.all([append.start(), present.start()]);
});
after(async () => {
  await Promise.all([append.close(), present.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function kvOutputsOf(file: string): Promise<string> {
  const session = await ort.InferenceSession.create(file);
  try {
    return readDecoderSpec(session.inputMetadata, session.outputMetadata, file).kvOutputs;
  } finally {
    await session.release();
  }
}

/** Eight prompts of different lengths. */
function prompts(): number[][] {
  const base = golden.prompts.map((p) => p.ids);
  return Array.from({ length: 8 }, (_, i) => {
    const p = base[i % base.length]!;
    return i < base.length ? p : [...p, ...golden.prompts[0]!.greedy.slice(0, i * 3)];
  });
}

test('the committed decoder outputs new positions only; --kv-io present writes the optimum form', async () => {
  assert.equal(await kvOutputsOf(resolve(FAMILY_DIR, 'tiny-fp32.onnx')), 'append');
  assert.equal(await kvOutputsOf(presentFile), 'present');
});

test('both forms decode the same tokens, alone and as a batch of 8 across spare-column re-packs', async () => {
  const ps = prompts();
  const seeded = (i: number) =>
    i % 2 === 0
      ? request(ps[i]!, TOKENS)
      : request(ps[i]!, TOKENS, { sampling: { temperature: 0.8, topK: 40, topP: 0.95, seed: 500 + i } });
  const alone: number[][] = [];
  for (let i = 0; i < ps.length; i++) alone.push((await collect(present, seeded(i))).tokens);
  for (const tier of [append, present]) {
    const together = await Promise.all(ps.map((_, i) => collect(tier, seeded(i))));
    together.forEach((r, i) => {
      assert.equal(r.tokens.length, TOKENS);
      assert.deepEqual(r.tokens, alone[i], `sequence ${i}`);
    });
  }
  // Joining and leaving at different times re-packs a cache that already has spare columns.
  const greedyAlone: number[][] = [];
  for (const p of ps.slice(0, 4)) greedyAlone.push((await collect(present, request(p, TOKENS))).tokens);
  const staggered = await Promise.all(
    ps.slice(0, 4).map(async (p, i) => {
      await new Promise((r) => setTimeout(r, i * 20));
      return collect(append, request(p, TOKENS - i * 10));
    }),
  );
  staggered.forEach((r, i) =>
    assert.deepEqual(r.tokens, greedyAlone[i]!.slice(0, TOKENS - i * 10), `staggered ${i}`),
  );
});

test('a kept sequence drafting past its spare columns equals plain greedy in both forms', async () => {
  const prompt = golden.prompts[0]!.ids;
  const plain = (await collect(present, request(prompt, TOKENS))).tokens;
  for (const tier of [append, present]) {
    const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
    try {
      const d = await seq.draft({ keep: 0, append: prompt }, 50);
      assert.deepEqual(d.tokens, plain.slice(0, 50));
      // Roll back 10 tokens, then continue past the first re-pack again.
      const keep = prompt.length + 40;
      const d2 = await seq.draft({ keep, append: [plain[40]!] }, 30);
      assert.deepEqual(d2.tokens, plain.slice(41, 71));
    } finally {
      seq.close();
    }
  }
});
