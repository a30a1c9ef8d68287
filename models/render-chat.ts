/**
 * Renders a conversation through a Jinja chat template with node-llama-cpp's engine, exactly as
 * the gateway renders chat requests (src/text/llama-tokenizer.ts renderNativeChat), and prints the
 * rendered values as JSON: {"text"} for message content, {"special_text"} for the template's own
 * text (where special-token markup counts) and {"token"} for BOS/EOS placeholders.
 * models/scripts/make_golden.py turns them into the golden chat ids with the checkpoint's own
 * tokenizer; models/convert.py runs it first to refuse a template the gateway cannot render.
 * Usage: echo '{"template": "...", "messages": [{"role": "user", "content": "Hi"}]}' | node --import tsx models/render-chat.ts
 */
import { readFileSync } from 'node:fs';
import { JinjaTemplateChatWrapper, SpecialTokensText, type ChatHistoryItem } from 'node-llama-cpp';

interface Input {
  readonly template: string;
  readonly messages: readonly { readonly role: string; readonly content: string }[];
}

const input = JSON.parse(readFileSync(0, 'utf8')) as Input;
let wrapper: JinjaTemplateChatWrapper;
try {
  wrapper = new JinjaTemplateChatWrapper({ template: input.template });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const history: ChatHistoryItem[] = input.messages.map((m): ChatHistoryItem =>
  m.role === 'assistant'
    ? { type: 'model', response: [m.content] }
    : m.role === 'system'
      ? { type: 'system', text: m.content }
      : { type: 'user', text: m.content },
);
// An empty model turn at the end asks the template for the generation prompt.
history.push({ type: 'model', response: [] });
const { contextText } = wrapper.generateContextState({ chatHistory: history });
const values = contextText.values.map((v) =>
  typeof v === 'string'
    ? { text: v }
    : v instanceof SpecialTokensText
      ? { special_text: v.value }
      : { token: v.value },
);
process.stdout.write(JSON.stringify(values) + '\n');
