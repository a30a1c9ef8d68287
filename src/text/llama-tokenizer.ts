import { JinjaTemplateChatWrapper, type ChatHistoryItem, type LlamaModel } from 'node-llama-cpp';
import { llamaRuntime } from '../tiers/llamacpp/runtime.js';
import type { ChatMessage, Tokenizer } from './tokenizer.js';

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

  private constructor(private readonly model: LlamaModel) {
    const tokens = model.tokens;
    this.vocabSize = readVocabSize(model);
    this.bos = tokens.shouldPrependBosToken ? (tokens.bos ?? undefined) : undefined;
    this.stopTokens = [tokens.eos, tokens.eot].filter((t): t is NonNullable<typeof t> => t != null);
    this.trainContextLength = model.trainContextSize;
    const template = readChatTemplate(model);
    this.chatWrapper = template === undefined ? undefined : new JinjaTemplateChatWrapper({ template });
  }

  static async load(modelPath: string): Promise<LlamaTokenizer> {
    const llama = await llamaRuntime();
    const model = await llama.loadModel({ modelPath, vocabOnly: true });
    return new LlamaTokenizer(model);
  }

  tokenize(text: string): number[] {
    return this.model.tokenize(text, false) as number[];
  }

  detokenize(tokens: readonly number[], previous?: readonly number[]): string {
    return this.model.detokenize(tokens as never, false, previous as never);
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
    return contextText.tokenize(this.model.tokenizer) as number[];
  }

  async close(): Promise<void> {
    await this.model.dispose();
  }
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
