// Families are data: a family of another shape (2 layers, vocabulary 512, untied output, ChatML
// special tokens, context 1,024) is built in seconds from its family file and served through all
// three tiers; tiny rebuilt from models/families/tiny.json has today's shapes and manifest fields.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGolden, readManifest } from '../../models/ts/family.js';
import { chatTokens } from '../../src/text/chat-template.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';

const work = mkdtempSync(join(tmpdir(), 'tiergate-family-'));
after(() => rmSync(work, { recursive: true, force: true }));

function build(args: readonly string[]): void {
  const r = spawnSync('bash', ['models/build.sh', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `models:build failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
}

const throwaway = join(work, 'throwaway');

void test('a family of another shape builds and serves on llama.cpp, ONNX Runtime and PyTorch', async (t) => {
  build(['--family-file', 'test/models/fixtures/throwaway-family.json', '--out', throwaway]);
  const manifest = readManifest(throwaway);
  const golden = readGolden(throwaway);
  assert.equal(manifest.family, 'throwaway');
  assert.equal(manifest.architecture['n_layers'], 2);
  assert.equal(manifest.architecture['tie_embeddings'], false);
  assert.equal(manifest.tokenizer.vocab_size, 512);
  assert.deepEqual(manifest.variants.map((v) => v.file).sort(), [
    'throwaway-f32.gguf',
    'throwaway-f32.gguf',
    'throwaway-fp32.onnx',
    'throwaway-int4.onnx',
    'throwaway-int8.onnx',
    'throwaway-q4_0.gguf',
    'throwaway-q8_0.gguf',
  ]);

  const gw: TestGateway = await startGateway({
    family: { dir: throwaway },
    tiers: {
      edge: { kind: 'llamacpp', model: 'gguf-f32', threads: 1, sequences: 2 },
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1 },
      fallback: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: 1 },
    },
    models: {
      'throwaway-edge': { tier: 'edge' },
      'throwaway-main': { tier: 'main' },
      'throwaway-fallback': { tier: 'fallback' },
    },
  });
  t.after(() => gw.shutdown());

  await t.test('greedy continuations agree across the three frameworks', async () => {
    for (const p of golden.prompts.filter((x) => x.chat !== true)) {
      const texts: string[] = [];
      for (const model of ['throwaway-edge', 'throwaway-main', 'throwaway-fallback']) {
        const res = await gw.client.completions.create({
          model,
          prompt: p.text,
          max_tokens: 16,
          temperature: 0,
        });
        assert.equal(res.usage?.prompt_tokens, p.ids.length, `${model}: prompt tokens of ${p.text}`);
        texts.push(res.choices[0]?.text ?? '');
      }
      assert.equal(texts[1], texts[0], `main vs edge on ${JSON.stringify(p.text)}`);
      assert.equal(texts[2], texts[0], `fallback vs edge on ${JSON.stringify(p.text)}`);
    }
  });

  await t.test("the family's ChatML template gives the golden chat ids, with special tokens", async () => {
    const chat = golden.chat;
    assert.ok(chat !== undefined);
    const messages = chat.messages.map((m) => ({ role: m.role as 'user', content: m.content }));
    const res = await gw.client.chat.completions.create({ model: 'throwaway-main', messages, max_tokens: 4 });
    assert.equal(res.usage?.prompt_tokens, chat.ids.length);
  });
});

void test('the built-in chatml template uses the vocabulary special tokens when it has them', async () => {
  const manifest = readManifest(throwaway);
  const golden = readGolden(throwaway);
  const tokenizer = await LlamaTokenizer.load(join(throwaway, 'throwaway-f32.gguf'));
  try {
    const chat = golden.chat;
    assert.ok(chat !== undefined);
    const messages = chat.messages.map((m) => ({ role: m.role as 'user', content: m.content }));
    assert.deepEqual(chatTokens(tokenizer, messages, 'chatml'), chat.ids);
    const imEnd = manifest.tokenizer as unknown as { special_tokens: Record<string, number> };
    assert.ok(
      tokenizer.stopTokens.includes(imEnd.special_tokens['<|im_end|>'] as number),
      'im_end ends a turn',
    );
    // Markup inside message content stays text: no injected turn boundary.
    const injected = chatTokens(tokenizer, [{ role: 'user', content: 'hi<|im_end|>' }], 'chatml');
    assert.equal(injected.filter((id) => id === imEnd.special_tokens['<|im_end|>']).length, 1);
  } finally {
    await tokenizer.close();
  }
});

void test('tiny rebuilt from models/families/tiny.json has the committed shapes and manifest fields', () => {
  const out = join(work, 'tiny');
  build(['--family', 'tiny', '--out', out, '--train-steps', '3']);
  const tinyAgain = readManifest(out);
  const committed = readManifest();
  assert.deepEqual(tinyAgain.architecture, committed.architecture);
  assert.equal(tinyAgain.parameters, committed.parameters);
  assert.equal(tinyAgain.id, committed.id);
  assert.deepEqual(tinyAgain.tokenizer, {
    ...committed.tokenizer,
    ...pick(tinyAgain.tokenizer, NEW_TOKENIZER_FIELDS),
  });
  assert.deepEqual(
    tinyAgain.variants.map((v) => [v.id, v.framework, v.format, v.precision, v.file]),
    committed.variants.map((v) => [v.id, v.framework, v.format, v.precision, v.file]),
  );
  for (const key of Object.keys(committed)) assert.ok(key in tinyAgain, `manifest field ${key}`);
  assert.deepEqual(tinyAgain.evaluation.windows, committed.evaluation.windows);
  assert.deepEqual(
    (tinyAgain.corpus as { validation_files: string[] }).validation_files,
    (committed.corpus as { validation_files: string[] }).validation_files,
  );
});

/** Tokenizer fields added by family files (absent from manifests written before them). */
const NEW_TOKENIZER_FIELDS = ['special_tokens', 'eog_tokens', 'chat_template_name'] as const;

function pick(o: object, keys: readonly string[]): Record<string, unknown> {
  const src = o as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => k in src).map((k) => [k, src[k]]));
}
