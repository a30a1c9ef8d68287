import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { ModelFileError, readGoldenTokens, resolveVariant, type ModelFamily } from '../family/manifest.js';
import { ByteTokenizer } from '../text/byte-tokenizer.js';
import { LlamaTokenizer } from '../text/llama-tokenizer.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { checkGoldenTokens } from './tokenizer-check.js';

/**
 * The shared tokenizer: the vocab-only llama.cpp load of a GGUF of the family (any variant:
 * all share one vocabulary), or the byte tokenizer for model-free runs. When the family has
 * golden ids (golden.json), the tokenizer must reproduce them or the start fails.
 */
export async function loadTokenizer(config: Config, family: ModelFamily): Promise<Tokenizer> {
  if (config.tokenizer.kind === 'bytes') return new ByteTokenizer();
  const file =
    config.tokenizer.model !== undefined
      ? resolveVariant(family, config.tokenizer.model, '.gguf').file
      : firstGguf(family);
  const tokenizer = await LlamaTokenizer.load(file);
  const golden = readGoldenTokens(family);
  if (golden !== undefined) {
    try {
      checkGoldenTokens(family.id, golden, tokenizer.encoders());
    } catch (err) {
      await tokenizer.close();
      throw err;
    }
  }
  return tokenizer;
}

function firstGguf(family: ModelFamily): string {
  const listed = family.variants.find((v) => v.file.endsWith('.gguf'));
  if (listed !== undefined) return listed.file;
  let names: string[] = [];
  try {
    names = readdirSync(family.dir).filter((n) => n.endsWith('.gguf'));
  } catch {
    // reported below
  }
  const name = names.sort()[0];
  if (name === undefined) {
    throw new ModelFileError(
      `no GGUF file in ${family.dir} to read the tokenizer from (run \`npm run models:build\`, or set tokenizer.kind: bytes)`,
    );
  }
  return join(family.dir, name);
}
