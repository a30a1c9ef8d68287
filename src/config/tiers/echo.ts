import { Type, type Static } from '@sinclair/typebox';

/**
 * The zero-work `echo` tier: replays the prompt's tokens (cycling) without running a model.
 * It exists to test and benchmark the gateway itself, so its cost is the gateway's cost.
 */
export const EchoTierSchema = Type.Object(
  {
    kind: Type.Literal('echo'),
    /** Context length the tier reports; prompts longer than this are rejected like a real model's. */
    contextLength: Type.Integer({ minimum: 1, default: 2048 }),
    /** Optional pause between tokens, to simulate a model's decode speed in tests. */
    tokenDelayMs: Type.Number({ minimum: 0, default: 0 }),
    /**
     * Without a delay, at most this many tokens per event (the Tier contract lets a tier send
     * several at once); with a delay, one per event.
     */
    batchTokens: Type.Integer({ minimum: 1, default: 32 }),
  },
  { additionalProperties: false },
);
export type EchoTierConfig = Static<typeof EchoTierSchema>;
