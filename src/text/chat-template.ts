import type { ChatMessage } from './tokenizer.js';

export type TextChatTemplate = 'plain' | 'chatml';

/**
 * Built-in chat templates for models without their own (the reference model is a plain
 * language model trained on prose, so it has none). The rendered text is tokenised as plain text.
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
