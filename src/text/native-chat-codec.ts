import type { BuiltinSpecialTokenValue, LlamaModel } from 'node-llama-cpp';
import type { ChatContextCodec } from './chat-context-tokens.js';

/** GGUF token_type of control tokens (llama.cpp LLAMA_TOKEN_TYPE_CONTROL). */
const CONTROL = 3;

/**
 * A chat codec on llama.cpp's own tokenizer, for vocabularies the JS fast path does not handle
 * (byte-level BPE, SentencePiece with user-defined tokens). It follows the fast path's rule
 * (chat-context-tokens.ts): the text between two special tokens is one llama.cpp fragment, as the
 * checkpoint's tokenizer sees the rendered template. Tokenising each template piece on its own
 * (node-llama-cpp's LlamaText.tokenize) would cut byte-level pre-tokens at every piece boundary,
 * e.g. "user: " + "Hi" as "user", ":", " ", "Hi" instead of "user", ":", " Hi".
 */
export function nativeChatCodec(model: LlamaModel, bos: number | undefined): ChatContextCodec {
  const ggml = (
    model.fileInfo.metadata.tokenizer as { ggml?: { tokens?: unknown; token_type?: unknown } } | undefined
  )?.ggml;
  const specials = new Map<string, number>();
  const tokens = ggml?.tokens;
  const types = ggml?.token_type;
  if (Array.isArray(tokens) && Array.isArray(types)) {
    tokens.forEach((text, id) => {
      if (types[id] === CONTROL && typeof text === 'string' && text !== '') specials.set(text, id);
    });
  }
  return {
    encode: (text) => model.tokenize(text, false) as number[],
    specials,
    specialId: (name) => builtinTokenId(model, name),
    bos,
  };
}

function builtinTokenId(model: LlamaModel, name: BuiltinSpecialTokenValue): number | undefined {
  const t = model.tokens;
  const id =
    name === 'BOS' ? t.bos : name === 'EOS' ? t.eos : name === 'EOT' ? t.eot : name === 'SEP' ? t.sep : t.nl;
  return id ?? undefined;
}
