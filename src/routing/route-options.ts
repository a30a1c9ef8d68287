import { GatewayError } from '../errors/gateway-error.js';

/** A request's own routing wishes, from the `tiergate` body field or `x-tiergate-*` headers. */
export interface RouteOptions {
  readonly policy?: string | undefined;
  readonly latencyBudgetMs?: number | undefined;
  readonly accuracyFloor?: number | undefined;
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

const NO_OPTIONS: RouteOptions = Object.freeze({
  policy: undefined,
  latencyBudgetMs: undefined,
  accuracyFloor: undefined,
});

const BODY_FIELDS = new Set(['latency_budget_ms', 'accuracy_floor', 'policy']);

/**
 * Reads and validates the routing options of a request. The body field wins over a header for
 * the same setting (it is the more deliberate of the two). Bad values are 400s naming the field.
 */
export function parseRouteOptions(body: unknown, headers: Headers): RouteOptions {
  const field =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>).tiergate : undefined;
  let fromBody: Record<string, unknown> = {};
  if (field !== undefined && field !== null) {
    if (typeof field !== 'object' || Array.isArray(field)) {
      throw new GatewayError('bad_request', "'tiergate' must be an object.", { param: 'tiergate' });
    }
    fromBody = field as Record<string, unknown>;
    const unknown = Object.keys(fromBody).find((k) => !BODY_FIELDS.has(k));
    if (unknown !== undefined) {
      throw new GatewayError(
        'bad_request',
        `Unknown field 'tiergate.${unknown}' (known: ${[...BODY_FIELDS].join(', ')}).`,
        { param: `tiergate.${unknown}` },
      );
    }
  }
  const latency = fromBody.latency_budget_ms ?? header(headers, 'x-tiergate-latency-budget-ms');
  const accuracy = fromBody.accuracy_floor ?? header(headers, 'x-tiergate-accuracy-floor');
  const policy = fromBody.policy ?? header(headers, 'x-tiergate-policy');
  // Most requests state no routing wishes: one shared answer rather than an object each.
  if (latency === undefined && accuracy === undefined && policy === undefined) return NO_OPTIONS;
  const latencyParam =
    fromBody.latency_budget_ms === undefined ? 'x-tiergate-latency-budget-ms' : 'tiergate.latency_budget_ms';
  const accuracyParam =
    fromBody.accuracy_floor === undefined ? 'x-tiergate-accuracy-floor' : 'tiergate.accuracy_floor';
  if (policy !== undefined && (typeof policy !== 'string' || policy === '')) {
    throw new GatewayError('bad_request', "'tiergate.policy' must be a non-empty string.", {
      param: 'tiergate.policy',
    });
  }
  return {
    policy,
    latencyBudgetMs: numberIn(
      latency,
      latencyParam,
      fromBody.latency_budget_ms === undefined,
      (v) => v > 0 && v <= 3_600_000,
      'a number of milliseconds in (0, 3600000]',
    ),
    accuracyFloor: numberIn(
      accuracy,
      accuracyParam,
      fromBody.accuracy_floor === undefined,
      (v) => v >= 0 && v <= 1,
      'a number in [0, 1]',
    ),
  };
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function numberIn(
  value: unknown,
  param: string,
  fromHeader: boolean,
  ok: (v: number) => boolean,
  what: string,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  // Headers are strings (emptiness was filtered above: Number('') is 0); JSON must give a number.
  const n =
    typeof value === 'number' ? value : fromHeader && typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || !ok(n)) {
    throw new GatewayError('bad_request', `'${param}' must be ${what} (got ${JSON.stringify(value)}).`, {
      param: param,
    });
  }
  return n;
}
