import { encodePrompt, type ChatMessage, type Tokenizer } from './tokenizer.js';

export type TextChatTemplate = 'plain' | 'chatml';

/**
 * Built-in chat templates for models without their own. The rendered text is tokenised as plain
 * text; chatTokens() below is what requests use.
 */
export function renderChat(messages: readonly ChatMessage[], template: TextChatTemplate): string {
  if (template === 'chatml') {
    // https://github.com/openai/openai-python/blob/release-v0.28.0/chatml.md
    const turns = messages.map((m) => `<|im_start|>${roleName(m.role)}\n${m.content}<|im_end|>\n`);
    return `${turns.join('')}<|im_start|>assistant\n`;
  }
  const lines = messages.map((m) => `${roleName(m.role)}: ${m.content}\n`);
  return `${lines.join('')}assistant:`;
}

function roleName(role: ChatMessage['role']): string {
  return role === 'developer' ? 'system' : role;
}

/**
 * Prompt ids of a conversation under a built-in template. ChatML's markers become the
 * vocabulary's own control tokens when it has them (e.g. the small family): llama.cpp tokenises
 * a prompt with special tokens parsed that way, each stretch of text between two markers on its
 * own (SentencePiece's leading space at its start), and message content is never searched for
 * markup, so a user cannot inject "<|im_end|>". Without those tokens the markup is plain text.
 */
export function chatTokens(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  template: TextChatTemplate,
): number[] {
  const start = template === 'chatml' ? tokenizer.specialToken?.('<|im_start|>') : undefined;
  const end = template === 'chatml' ? tokenizer.specialToken?.('<|im_end|>') : undefined;
  if (start === undefined || end === undefined)
    return encodePrompt(tokenizer, renderChat(messages, template));
  const ids = tokenizer.bos === undefined ? [] : [tokenizer.bos];
  for (const m of messages) {
    ids.push(
      start,
      ...tokenizer.tokenize(`${roleName(m.role)}\n${m.content}`),
      end,
      ...tokenizer.tokenize('\n'),
    );
  }
  ids.push(start, ...tokenizer.tokenize('assistant\n'));
  return ids;
}
