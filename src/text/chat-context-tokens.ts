import {
  SpecialToken,
  SpecialTokensText,
  type BuiltinSpecialTokenValue,
  type LlamaText,
} from 'node-llama-cpp';

export interface ChatContextCodec {
  /** Text → ids with the vocabulary's leading-space rule, as one llama.cpp text fragment. */
  encode(text: string): number[];
  /** Control tokens by their text (e.g. "<s>", "<|im_start|>"), matched in template text only. */
  readonly specials: ReadonlyMap<string, number>;
  /** Id of a named special token (BOS, EOS, …), undefined when the vocabulary has none. */
  specialId(name: BuiltinSpecialTokenValue): number | undefined;
  /** Prepended when the model wants it and the template did not put it first. */
  readonly bos: number | undefined;
}

/**
 * Token ids of a rendered chat context, tokenised as llama.cpp tokenises a prompt with special
 * tokens parsed: text between special tokens is one fragment each (so SentencePiece's space
 * prefix is added only at the start and after a special token, not at every template piece),
 * special-token markup is recognised only in the template's own text (never in message content,
 * so a user cannot inject "<|im_end|>"), and BOS comes first when the model adds one.
 */
export function chatContextTokens(text: LlamaText, codec: ChatContextCodec): number[] {
  const out: number[] = [];
  let pending = '';
  const special = (id: number | undefined): void => {
    if (id === undefined) return;
    if (pending !== '') out.push(...codec.encode(pending));
    pending = '';
    out.push(id);
  };
  const pattern = specialsPattern(codec.specials);
  for (const value of text.values) {
    if (typeof value === 'string') pending += value;
    else if (value instanceof SpecialToken) special(codec.specialId(value.value));
    else if (value instanceof SpecialTokensText) {
      if (pattern === undefined) {
        pending += value.value;
        continue;
      }
      let at = 0;
      for (const m of value.value.matchAll(pattern)) {
        pending += value.value.slice(at, m.index);
        special(codec.specials.get(m[0]));
        at = m.index + m[0].length;
      }
      pending += value.value.slice(at);
    }
  }
  if (pending !== '') out.push(...codec.encode(pending));
  if (codec.bos !== undefined && out[0] !== codec.bos) out.unshift(codec.bos);
  return out;
}

const patterns = new WeakMap<ReadonlyMap<string, number>, RegExp | undefined>();

/** One alternation of every special text, longest first (so "<|im_start|>" beats "<|"). */
function specialsPattern(specials: ReadonlyMap<string, number>): RegExp | undefined {
  if (patterns.has(specials)) return patterns.get(specials);
  const texts = [...specials.keys()].filter((t) => t !== '').sort((a, b) => b.length - a.length);
  const pattern =
    texts.length === 0
      ? undefined
      : new RegExp(texts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  patterns.set(specials, pattern);
  return pattern;
}
