import { GatewayError, type ErrorKind } from '../../errors/gateway-error.js';

/**
 * Errors of the TensorFlow.js tier. `code` is stable for callers and logs; each code has its kind
 * in the gateway's error model here, at the tier boundary (docs/architecture.md "Errors"): tfjs
 * and worker failures never leave the tier as anything else.
 */
export type TfjsTierErrorCode =
  | 'TG_TFJS_MODEL_MISSING'
  | 'TG_TFJS_MODEL_INVALID'
  | 'TG_TFJS_WORKER_FAILED'
  | 'TG_TFJS_WORKER_STALLED'
  | 'TG_TFJS_CLOSED'
  | 'TG_TFJS_BAD_REQUEST';

const KIND: { readonly [C in TfjsTierErrorCode]: ErrorKind } = {
  TG_TFJS_MODEL_MISSING: 'internal',
  TG_TFJS_MODEL_INVALID: 'internal',
  TG_TFJS_WORKER_FAILED: 'upstream_broken',
  // A worker that stopped answering (src/tiers/worker-host/liveness.ts): another tier continues.
  TG_TFJS_WORKER_STALLED: 'upstream_broken',
  TG_TFJS_CLOSED: 'unavailable',
  TG_TFJS_BAD_REQUEST: 'bad_request',
};

export class TfjsTierError extends GatewayError {
  declare readonly code: TfjsTierErrorCode;

  constructor(code: TfjsTierErrorCode, message: string) {
    super(KIND[code], message, { code });
    this.name = 'TfjsTierError';
  }
}
