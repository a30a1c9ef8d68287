// The gateway refuses to start when its tokenizer does not reproduce the family's golden ids: the
// silent failure of a vocabulary written with the wrong tokenizer type (here the tiny family's
// GGUF relabelled as llama.cpp's unigram type `t5`, which loads fine and splits words differently).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteGgufMetadata } from '../helpers/gguf-rewrite.js';
import { FAMILY_DIR, startGateway } from '../helpers/start-gateway.js';

function familyCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-tokcheck-'));
  for (const f of ['manifest.json', 'golden.json']) copyFileSync(join(FAMILY_DIR, f), join(dir, f));
  return dir;
}

const config = (dir: string): Record<string, unknown> => ({
  family: { dir },
  tokenizer: { kind: 'gguf', model: 'tiny-q4_k_m.gguf' },
  tiers: { echo: { kind: 'echo', contextLength: 256 } },
  models: { 'tiergate-echo': { tier: 'echo' } },
});

void test('a GGUF whose tokenizer disagrees with the golden ids stops the start, naming the family and sample', async (t) => {
  const dir = familyCopy();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await rewriteGgufMetadata(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'), join(dir, 'tiny-q4_k_m.gguf'), {
    'tokenizer.ggml.model': 't5',
  });
  await assert.rejects(startGateway(config(dir)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'TIERGATE_ERR_TOKENIZER_MISMATCH');
    assert.match(
      err.message,
      /family tiergate-tiny: the llama\.cpp tokenizer does not reproduce golden sample 0/,
    );
    return true;
  });
});

void test('the same family with its own GGUF starts', async (t) => {
  const dir = familyCopy();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'), join(dir, 'tiny-q4_k_m.gguf'));
  const gw = await startGateway(config(dir));
  await gw.shutdown();
});
