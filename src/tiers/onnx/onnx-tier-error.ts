import { GatewayError, type ErrorKind } from '../../errors/gateway-error.js';

/**
 * Errors of the ONNX Runtime tier. `code` is stable for callers and logs; the message tells the
 * operator what to fix (e.g. which decoder inputs a model file lacks). Each code has its kind in
 * the gateway's error model here, at the tier boundary (docs/architecture.md "Errors").
 */
export type OnnxTierErrorCode =
  | 'TG_ONNX_MODEL_MISSING'
  | 'TG_ONNX_NOT_A_DECODER'
  | 'TG_ONNX_WORKER_FAILED'
  | 'TG_ONNX_WORKER_STALLED'
  | 'TG_ONNX_NOT_STARTED'
  | 'TG_ONNX_CLOSED'
  | 'TG_ONNX_BAD_REQUEST';

const KIND: { readonly [C in OnnxTierErrorCode]: ErrorKind } = {
  TG_ONNX_MODEL_MISSING: 'internal',
  TG_ONNX_NOT_A_DECODER: 'internal',
  TG_ONNX_WORKER_FAILED: 'upstream_broken',
  // A worker that stopped answering (docs/main-tier.md "Worker liveness"): its sequences broke
  // off, and another tier can continue them.
  TG_ONNX_WORKER_STALLED: 'upstream_broken',
  TG_ONNX_NOT_STARTED: 'unavailable',
  TG_ONNX_CLOSED: 'unavailable',
  TG_ONNX_BAD_REQUEST: 'bad_request',
};

export class OnnxTierError extends GatewayError {
  declare readonly code: OnnxTierErrorCode;

  constructor(code: OnnxTierErrorCode, message: string) {
    super(KIND[code], message, { code });
    this.name = 'OnnxTierError';
  }
}
