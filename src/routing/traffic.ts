import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * One recorded request's routing features, one JSON object per line (JSONL). Field names follow
 * the API's snake_case (the `tiergate` body field), so a request log can be turned into traffic.
 */
export const TrafficRecordSchema = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1 })),
    prompt_tokens: Type.Integer({ minimum: 1 }),
    max_tokens: Type.Integer({ minimum: 1 }),
    latency_budget_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    accuracy_floor: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    policy: Type.Optional(Type.String({ minLength: 1 })),
    api_key: Type.Optional(Type.String({ minLength: 1 })),
    /** How many identical requests this line stands for (default 1). */
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type TrafficRecord = Static<typeof TrafficRecordSchema>;

export class TrafficError extends Error {
  readonly code = 'TIERGATE_ERR_TRAFFIC';
  constructor(message: string) {
    super(message);
    this.name = 'TrafficError';
  }
}

/** Parses JSONL traffic; blank lines and lines starting with `#` are skipped. Errors name the line. */
export function parseTraffic(text: string, source = 'traffic'): TrafficRecord[] {
  const out: TrafficRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new TrafficError(`${source}:${i + 1}: not JSON: ${(err as Error).message}`);
    }
    const error = Value.Errors(TrafficRecordSchema, value).First();
    if (error !== undefined)
      throw new TrafficError(`${source}:${i + 1}: ${error.path || '/'}: ${error.message}`);
    out.push(value as TrafficRecord);
  });
  if (out.length === 0) throw new TrafficError(`${source}: no records`);
  return out;
}
