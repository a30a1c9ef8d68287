import type { ChoiceEvent, TokenDetail } from '../pipeline/types.js';

type Delta = Extract<ChoiceEvent, { kind: 'delta' }>;

/**
 * The text deltas of a stream that wait for the same SSE write (server.sseCoalesceMs), merged
 * per choice: a write carries one chunk per choice, whatever the number of tokens in it, as a
 * server that decodes several tokens per step sends them. Fewer chunks are less JSON to build
 * here and less to parse for the client. Deltas are joined in order, and a choice keeps its
 * place: the choices' chunks leave in the order their first waiting delta came.
 */
export class DeltaMerger {
  private waiting: { index: number; text: string; tokens: TokenDetail[] }[] = [];

  add(delta: Delta): void {
    for (const w of this.waiting) {
      if (w.index !== delta.index) continue;
      w.text += delta.text;
      for (const t of delta.tokens) w.tokens.push(t);
      return;
    }
    this.waiting.push({ index: delta.index, text: delta.text, tokens: [...delta.tokens] });
  }

  /** The merged deltas, one per choice, and none left waiting. */
  take(): Delta[] {
    if (this.waiting.length === 0) return NONE;
    const merged = this.waiting.map((w): Delta => ({ kind: 'delta', ...w }));
    this.waiting = [];
    return merged;
  }
}

const NONE: Delta[] = [];
