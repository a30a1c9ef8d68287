/**
 * The ids of a conversation under a GGUF's own chat template, as the gateway gives them: the
 * template rendered by node-llama-cpp's Jinja engine, the text between special tokens tokenised by
 * llama.cpp as one fragment each, special-token markup parsed only in the template's own text
 * (src/text/chat-context-tokens.ts), BOS first when the model adds one.
 */
import { JinjaTemplateChatWrapper, type ChatHistoryItem, type LlamaModel } from 'node-llama-cpp';
import { chatContextTokens } from '../../src/text/chat-context-tokens.js';
import { nativeChatCodec } from '../../src/text/native-chat-codec.js';

export function chatIds(
  model: LlamaModel,
  messages: readonly { readonly role: string; readonly content: string }[],
): number[] {
  const meta = model.fileInfo.metadata.tokenizer as { chat_template?: unknown } | undefined;
  if (typeof meta?.chat_template !== 'string') throw new Error('the GGUF has no tokenizer.chat_template');
  const wrapper = new JinjaTemplateChatWrapper({ template: meta.chat_template });
  const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem =>
    m.role === 'assistant'
      ? { type: 'model', response: [m.content] }
      : m.role === 'system'
        ? { type: 'system', text: m.content }
        : { type: 'user', text: m.content },
  );
  // An empty model turn at the end asks the template for the generation prompt.
  history.push({ type: 'model', response: [] });
  const { contextText } = wrapper.generateContextState({ chatHistory: history });
  const bos = model.tokens.shouldPrependBosToken ? (model.tokens.bos ?? undefined) : undefined;
  return chatContextTokens(contextText, nativeChatCodec(model, bos));
}
