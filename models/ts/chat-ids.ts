/**
 * The ids of a conversation under a GGUF's own chat template: the template rendered by
 * node-llama-cpp's Jinja engine, special-token markup in the template's text parsed as the
 * vocabulary's control tokens, BOS first when the model adds one.
 *
 * gatewayChatIds tokenises as the gateway does (src/text/chat-context-tokens.ts: the text between
 * special tokens as one llama.cpp fragment), the rule every family's golden chat follows
 * (models/scripts/make_golden.py).
 */
import { JinjaTemplateChatWrapper, type ChatHistoryItem, type LlamaModel, type LlamaText } from 'node-llama-cpp';
import { chatContextTokens } from '../../src/text/chat-context-tokens.js';
import { nativeChatCodec } from '../../src/text/native-chat-codec.js';

type Messages = readonly { readonly role: string; readonly content: string }[];

function render(model: LlamaModel, messages: Messages): LlamaText {
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
  return wrapper.generateContextState({ chatHistory: history }).contextText;
}

function bosOf(model: LlamaModel): number | undefined {
  return model.tokens.shouldPrependBosToken ? (model.tokens.bos ?? undefined) : undefined;
}

export function gatewayChatIds(model: LlamaModel, messages: Messages): number[] {
  return chatContextTokens(render(model, messages), nativeChatCodec(model, bosOf(model)));
}
