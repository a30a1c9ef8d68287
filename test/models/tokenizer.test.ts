// node-llama-cpp, loading only the vocabulary of the GGUF F32 file, must tokenise exactly like the
// SentencePiece model it was built from (ids stored in golden.json at build time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGolden, readManifest, variantFileById } from '../../models/ts/family.js';
import { sharedLlama } from '../../models/ts/gguf-runner.js';

test('llama.cpp tokenises the golden samples exactly like SentencePiece', async () => {
  const golden = readGolden();
  const llama = await sharedLlama();
  const model = await llama.loadModel({ modelPath: variantFileById('gguf-f32'), vocabOnly: true });
  try {
    assert.ok(golden.tokenizer_samples.length >= 3);
    for (const sample of golden.tokenizer_samples) {
      assert.deepEqual(
        Array.from(model.tokenize(sample.text)),
        sample.ids,
        `text: ${JSON.stringify(sample.text)}`,
      );
      // Detokenising gives the text back (byte fallback included).
      assert.equal(model.detokenize(model.tokenize(sample.text)), sample.text);
    }
  } finally {
    await model.dispose();
  }
});

test('GGUF special tokens and chat template match the manifest', async () => {
  const manifest = readManifest();
  const llama = await sharedLlama();
  const model = await llama.loadModel({ modelPath: variantFileById('gguf-f32'), vocabOnly: true });
  try {
    assert.equal(model.tokens.bos, manifest.tokenizer.bos_id);
    assert.equal(model.tokens.eos, manifest.tokenizer.eos_id);
    const meta = model.fileInfo.metadata as unknown as { tokenizer: { chat_template?: string } };
    assert.equal(meta.tokenizer.chat_template, manifest.tokenizer.chat_template);
  } finally {
    await model.dispose();
  }
});
