import {
  JinjaTemplateChatWrapper,
  type BuiltinSpecialTokenValue,
  type ChatHistoryItem,
  type LlamaModel,
} from 'node-llama-cpp';
import { chatContextTokens, type ChatContextCodec } from './chat-context-tokens.js';
import { nativeChatCodec } from './native-chat-codec.js';
import { llamaRuntime } from './llama-runtime.js';
import { SpmDecoder } from './spm-decoder.js';
import { SpmEncoder } from './spm-encoder.js';
import { readSpmVocab, TOKEN_TYPE } from './spm-vocab.js';
import type { ChatMessage, Tokenizer } from './tokenizer.js';

/** node-llama-cpp's maxRecentDetokenizerTokens: how much of `previous` decides the leading space. */
const RECENT_TOKENS = 3;

/** In `u` mode a surrogate range matches only unpaired surrogates. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Texts on which the JS codec must agree with llama.cpp before it is trusted (checked at load). */
const SELF_CHECK_TEXTS = [
  'The county grand jury said Friday an investigation of recent primary elections',
  '  two  leading spaces,\ttabs\nand new\n\nlines ',
  'Ünïcödé — “quotes”, emoji 🙂 and CJK 漢字',
  'numbers 1,234.5678 and (brackets) [x] {y} <s> </s> <unk>',
];

/**
 * The family's tokenizer from a vocab-only llama.cpp load of one of its GGUF files: the exact
 * tokenizer the edge tier uses, without loading any weights.
 */
export class LlamaTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly stopTokens: readonly number[];
  readonly trainContextLength: number;
  private readonly chatWrapper: JinjaTemplateChatWrapper | undefined;
  /**
   * Pure-JS codec (undefined when the vocabulary is not one it handles or it disagreed with
   * llama.cpp at load): per-request tokenisation and per-token detokenisation through the native
   * addon cost tens of microseconds each, a large share of the gateway's own overhead.
   */
  private readonly encoder: SpmEncoder | undefined;
  private readonly decoder: SpmDecoder | undefined;
  /** Chat contexts tokenised like llama.cpp (one fragment between special tokens); undefined without the JS codec. */
  private readonly chatCodec: ChatContextCodec | undefined;
  /** The chat codec on llama.cpp's tokenizer, built on first use when there is no JS codec. */
  private nativeCodec: ChatContextCodec | undefined;
  /** specialToken() answers, by text. */
  private readonly specials = new Map<string, number | undefined>();

  private constructor(private readonly model: LlamaModel) {
    const tokens = model.tokens;
    this.vocabSize = readVocabSize(model);
    this.bos = tokens.shouldPrependBosToken ? (tokens.bos ?? undefined) : undefined;
    this.stopTokens = [tokens.eos, tokens.eot].filter((t): t is NonNullable<typeof t> => t != null);
    this.trainContextLength = model.trainContextSize;
    const template = readChatTemplate(model);
    this.chatWrapper = template === undefined ? undefined : new JinjaTemplateChatWrapper({ template });
    const codec = jsCodec(model, this.vocabSize);
    this.encoder = codec?.encoder;
    this.decoder = codec?.decoder;
    if (codec !== undefined) {
      const encoder = codec.encoder;
      this.chatCodec = {
        encode: (text) => encoder.encode(text),
        specials: codec.controlTokens,
        specialId: (name) => specialTokenId(model, name),
        bos: this.bos,
      };
    }
  }

  /**
   * Every path text can take to ids here: llama.cpp's own tokenizer, and the JS fast path when it
   * is in use. The gateway checks both against the family's golden ids at start-up.
   */
  encoders(): { readonly name: string; encode(text: string): number[] }[] {
    const native = {
      name: 'llama.cpp',
      encode: (text: string) => this.model.tokenize(text, false) as number[],
    };
    const encoder = this.encoder;
    return encoder === undefined
      ? [native]
      : [native, { name: 'JS fast-path', encode: (text: string) => encoder.encode(text) }];
  }

  /** Whether tokenize/detokenize run in JS (true) or through llama.cpp (false). */
  get usesJsCodec(): boolean {
    return this.encoder !== undefined;
  }

  static async load(modelPath: string): Promise<LlamaTokenizer> {
    const llama = await llamaRuntime();
    const model = await llama.loadModel({ modelPath, vocabOnly: true });
    return new LlamaTokenizer(model);
  }

  tokenize(text: string): number[] {
    // Ill-formed UTF-16 (lone surrogates) is left to llama.cpp's own conversion.
    if (this.encoder !== undefined && !LONE_SURROGATE.test(text)) return this.encoder.encode(text);
    return this.model.tokenize(text, false) as number[];
  }

  detokenize(tokens: readonly number[], previous?: readonly number[]): string {
    const d = this.decoder;
    if (d === undefined || !d.covers(tokens) || (previous !== undefined && !d.covers(previous))) {
      return this.model.detokenize(tokens as never, false, previous as never);
    }
    if (tokens.length === 0) return '';
    // Same continuation rule as node-llama-cpp's detokenize(tokens, false, lastTokens).
    if (previous === undefined || previous.length === 0) return d.decode(tokens);
    const recent = previous.slice(-RECENT_TOKENS);
    const recentText = d.decode(recent);
    if (recentText === '') return d.decode(tokens);
    const text = d.decode([...recent, ...tokens]);
    return text.startsWith(recentText) ? text.slice(recentText.length) : d.decode(tokens);
  }

  tokenBytes(token: number, first: boolean): Uint8Array | undefined {
    // Without the JS codec the bytes are llama.cpp's to produce: undefined tells callers to detokenize.
    return this.decoder?.piece(token, first);
  }

  specialToken(text: string): number | undefined {
    if (this.specials.has(text)) return this.specials.get(text);
    // With special parsing, a control token's text is one id of type control (or user-defined).
    const ids = this.model.tokenize(text, true) as number[];
    const only = ids.length === 1 ? ids[0] : undefined;
    const attrs = only === undefined ? undefined : this.model.getTokenAttributes(only as never);
    const id = attrs !== undefined && (attrs.control || attrs.userDefined) ? only : undefined;
    this.specials.set(text, id);
    return id;
  }

  renderNativeChat(messages: readonly ChatMessage[]): number[] | undefined {
    if (this.chatWrapper === undefined) return undefined;
    const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem => {
      if (m.role === 'assistant') return { type: 'model', response: [m.content] };
      if (m.role === 'system' || m.role === 'developer') return { type: 'system', text: m.content };
      return { type: 'user', text: m.content };
    });
    // An empty model turn at the end asks the template for the generation prompt.
    history.push({ type: 'model', response: [] });
    const { contextText } = this.chatWrapper.generateContextState({ chatHistory: history });
    if (this.chatCodec !== undefined) return chatContextTokens(contextText, this.chatCodec);
    // Without the JS codec (byte-level BPE, ...), the same fragment rule on llama.cpp's tokenizer.
    this.nativeCodec ??= nativeChatCodec(this.model, this.bos);
    return chatContextTokens(contextText, this.nativeCodec);
  }

  async close(): Promise<void> {
    await this.model.dispose();
  }
}

/**
 * The JS encoder/decoder for a SentencePiece vocabulary, after checking that they reproduce
 * llama.cpp on every single token and on a few texts; otherwise undefined (llama.cpp is used).
 */
function jsCodec(
  model: LlamaModel,
  vocabSize: number,
): { encoder: SpmEncoder; decoder: SpmDecoder; controlTokens: ReadonlyMap<string, number> } | undefined {
  const vocab = readSpmVocab(model);
  if (vocab === undefined || vocab.texts.length !== vocabSize) return undefined;
  let encoder: SpmEncoder;
  try {
    encoder = new SpmEncoder(vocab);
  } catch {
    return undefined;
  }
  const decoder = new SpmDecoder(vocab);
  const native = (ids: readonly number[]): string => model.detokenize(ids as never, false);
  for (let id = 0; id < vocabSize; id++) {
    if (decoder.decode([id]) !== native([id])) return undefined;
  }
  for (const text of SELF_CHECK_TEXTS) {
    const ids = model.tokenize(text, false) as number[];
    const mine = encoder.encode(text);
    if (mine.length !== ids.length || mine.some((t, i) => t !== ids[i])) return undefined;
    if (decoder.decode(ids) !== native(ids)) return undefined;
  }
  const controlTokens = new Map<string, number>();
  vocab.texts.forEach((text, id) => {
    if (vocab.types[id] === TOKEN_TYPE.control && text !== '') controlTokens.set(text, id);
  });
  return { encoder, decoder, controlTokens };
}

function specialTokenId(model: LlamaModel, name: BuiltinSpecialTokenValue): number | undefined {
  const t = model.tokens;
  const id =
    name === 'BOS' ? t.bos : name === 'EOS' ? t.eos : name === 'EOT' ? t.eot : name === 'SEP' ? t.sep : t.nl;
  return id ?? undefined;
}

function readVocabSize(model: LlamaModel): number {
  const tokenizerMeta = model.fileInfo.metadata.tokenizer as
    { ggml?: { tokens?: readonly unknown[] } } | undefined;
  return tokenizerMeta?.ggml?.tokens?.length ?? 0;
}

function readChatTemplate(model: LlamaModel): string | undefined {
  const meta = model.fileInfo.metadata.tokenizer as { chat_template?: unknown } | undefined;
  return typeof meta?.chat_template === 'string' && meta.chat_template !== ''
    ? meta.chat_template
    : undefined;
}
