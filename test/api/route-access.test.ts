import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { installAuth, registeredRoutes, type Access, type RegisteredRoute } from '../../src/api/auth.js';
import { HTTP_ROUTE_ACCESS } from '../../src/api/scopes.js';
import { buildConfig } from '../../src/config/index.js';
import { rawRequest, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { echoConfig, REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';

const INFERENCE_KEY = 'sk-route-access-inference-0123';
const ADMIN_KEY = 'sk-route-access-admin-0123';

type KeyKind = 'none' | 'wrong' | 'inference' | 'admin';
const KEYS: Readonly<Record<KeyKind, string | undefined>> = {
  none: undefined,
  wrong: 'sk-route-access-not-configured',
  inference: INFERENCE_KEY,
  admin: ADMIN_KEY,
};
const KINDS = Object.keys(KEYS) as KeyKind[];

const AUTH = {
  enabled: true,
  keys: [
    { name: 'app', key: INFERENCE_KEY, scopes: ['inference'] },
    // Admin only: an admin key is not an inference key unless it says so.
    { name: 'ops', key: ADMIN_KEY, scopes: ['admin'] },
  ],
};

/** Values for path parameters; one not listed gets `x`. */
const PARAMS: Readonly<Record<string, string>> = { id: 'tiergate-echo' };

/** Bodies that make a route succeed; a route not listed gets `{}` (then any answer but a refusal). */
const BODIES: Readonly<Record<string, unknown>> = {
  'POST /v1/completions': { model: 'tiergate-echo', prompt: 'hi', max_tokens: 2 },
  'POST /v1/chat/completions': {
    model: 'tiergate-echo',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
  },
  'POST /v1/route/explain': { model: 'tiergate-echo', prompt: 'hi', max_tokens: 2 },
  'POST /admin/route/simulate': { traffic: [{ prompt_tokens: 4, max_tokens: 4 }] },
};

/**
 * How a spelling of a route's path must be answered: `same` as the plain path (the router reads
 * it as that path), `unknown` as a path with no route (it names another path: `%2F` is data, not
 * a separator, and the router is case-sensitive), or `bad` (400 for everyone: not decodable).
 */
type Expect = 'same' | 'unknown' | 'bad';

interface Spelling {
  readonly name: string;
  readonly target: string;
  readonly version?: 'HTTP/1.0';
  readonly expect: Expect;
}

const pct = (c: string, lower: boolean): string => {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${lower ? hex : hex.toUpperCase()}`;
};
const encodeAt = (path: string, i: number, lower = true): string =>
  path.slice(0, i) + pct(path[i]!, lower) + path.slice(i + 1);

/** Every way of writing `path` (the plain path of `route`) that the table below tries. */
function spellings(route: RegisteredRoute, path: string): Spelling[] {
  const out: Spelling[] = [];
  const add = (expect: Expect, name: string, target: string, version?: 'HTTP/1.0'): void =>
    void out.push(version === undefined ? { name, target, expect } : { name, target, expect, version });
  const tail = path.slice(1);
  add('same', 'plain, HTTP/1.0', path, 'HTTP/1.0');
  // Percent-encoding: the first and last character of every segment, then every character.
  let n = 0;
  for (let i = 1; i < path.length; i++) {
    const first = path[i - 1] === '/';
    const last = i === path.length - 1 || path[i + 1] === '/';
    if (path[i] !== '/' && (first || last)) add('same', `%XX at ${i}`, encodeAt(path, i, n++ % 2 === 0));
  }
  add('same', 'every character %XX', [...path].map((c) => (c === '/' ? c : pct(c, false))).join(''));
  add('same', 'query string', `${path}?q=1&next=/admin/tiers`);
  add('same', 'fragment', `${path}#frag`);
  add('same', 'fragment with dot segments', `${path}#/../../metrics`);
  add('same', 'trailing slash', `${path}/`);
  add('same', 'duplicate slashes', path.replaceAll('/', '//'));
  add('same', 'leading triple slash', `//${path}`);
  add('same', '. segments', `/./${tail.replaceAll('/', '/./')}`);
  add('same', '.. after a detour', `/detour/..${path}`);
  add('same', '.. out of another route', `/admin/tiers/../..${path}`);
  add('same', 'percent-encoded ..', `/detour/%2e%2E${path}`);
  add('same', '.. above the root', `/../..${path}`);
  add('same', 'absolute-form', `http://gateway.example${path}`);
  add('same', 'absolute-form, mixed-case scheme and host, port', `HTTP://Gateway.EXAMPLE:8080${path}`);
  add('same', 'absolute-form, %XX', `https://x${encodeAt(path, 1)}`);
  add('same', 'absolute-form, HTTP/1.0', `http://x${path}`, 'HTTP/1.0');
  add('same', 'all at once', `http://x//detour/%2e.//${encodeAt(tail, 0, false)}/?q=1`);
  add('same', 'all at once, origin-form', `//detour/%2e.//${encodeAt(tail, 0, false)}/?q=1#f`);
  // Spellings of other paths.
  const pattern = route.url.split('/').slice(1);
  const segments = tail.split('/');
  let at = 0;
  segments.forEach((segment, s) => {
    at += 1 + segment.length;
    if (s < segments.length - 1)
      add('unknown', `%2F for separator ${s + 1}`, encodeAt(path, at, s % 2 === 0));
    const isStatic = !(pattern[s] ?? '').startsWith(':');
    const letter = segment.search(/[a-z]/);
    if (isStatic && letter !== -1) {
      const start = at - segment.length;
      add(
        'unknown',
        `upper case in segment ${s + 1}`,
        path.slice(0, start + letter) + segment[letter]!.toUpperCase() + path.slice(start + letter + 1),
      );
    }
  });
  add('bad', 'broken %-escape', `${path.slice(0, 2)}%zz${path.slice(2)}`);
  // The router refuses a fragment in an absolute-form target (RFC 9112 allows none there).
  add('bad', 'absolute-form with a fragment', `http://x${path}#/admin/tiers`);
  return out;
}

function concretePath(url: string): string {
  return url.replace(/:(\w+)/g, (_m, name: string) => PARAMS[name] ?? 'x');
}

function request(
  method: string,
  target: string,
  kind: KeyKind,
  body: unknown,
  version?: 'HTTP/1.0',
  extra: Record<string, string> = {},
): RawRequest {
  const headers: Record<string, string> = { ...extra };
  const key = KEYS[kind];
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  const hasBody = method !== 'GET' && method !== 'HEAD';
  if (hasBody) headers['content-type'] = 'application/json';
  return {
    method,
    target,
    headers,
    ...(version === undefined ? {} : { version }),
    ...(hasBody ? { body: JSON.stringify(body ?? {}) } : {}),
  };
}

/** What "answered the same" compares: status, media type, and the error code or the body's fields. */
function signature(res: RawResponse): string {
  const type = (res.headers['content-type'] ?? '').split(';')[0] ?? '';
  let detail = res.body.split('\n', 1)[0] ?? '';
  if (type === 'application/json' && res.body !== '') {
    const json = JSON.parse(res.body) as { error?: { type: string; code: string | null } };
    detail =
      json.error === undefined
        ? `fields ${Object.keys(json).sort().join(',')}`
        : `error ${json.error.type} ${json.error.code}`;
  }
  return `${res.status} ${type} ${detail}`;
}

/** The answer a route's access table entry calls for. */
function expectedOutcome(access: Access, kind: KeyKind): 'served' | 401 | 403 {
  if (access === 'open') return 'served';
  if (kind === 'none' || kind === 'wrong') return 401;
  return kind === access ? 'served' : 403;
}

/** Runs `tasks` a few at a time: enough to be quick, few enough to leave the machine alone. */
async function inPool<T>(tasks: (() => Promise<T>)[], width = 4): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

describe('route access with API keys on, from the route fastify matched', () => {
  let gw: TestGateway;
  let port: number;
  let routes: readonly RegisteredRoute[];
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    gw = await startGateway(echoConfig({ auth: AUTH, logging: { level: 'info' } }), 'unused', {
      write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    });
    port = Number(new URL(gw.baseUrl).port);
    routes = registeredRoutes(gw.app);
  });
  after(async () => gw.shutdown());

  test('the registered routes and the access table agree; only /healthz and /readyz are open', () => {
    assert.ok(routes.length >= Object.keys(HTTP_ROUTE_ACCESS).length);
    for (const r of routes) {
      const entry = HTTP_ROUTE_ACCESS[`${r.method} ${r.url}`] ?? HTTP_ROUTE_ACCESS[`GET ${r.url}`];
      assert.equal(r.access, entry, `${r.method} ${r.url}`);
      if (r.url.startsWith('/v1/')) assert.equal(r.access, 'inference', r.url);
      if (r.url.startsWith('/admin/') || r.url === '/metrics') assert.equal(r.access, 'admin', r.url);
    }
    for (const entry of Object.keys(HTTP_ROUTE_ACCESS))
      assert.ok(
        routes.some((r) => `${r.method} ${r.url}` === entry),
        `${entry} is not registered`,
      );
    const open = routes.filter((r) => r.access === 'open').map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(open.sort(), ['GET /healthz', 'GET /readyz', 'HEAD /healthz', 'HEAD /readyz']);
  });

  test('an unknown path needs a valid key before it is a 404; a broken escape is a 400 for all', async () => {
    for (const method of ['GET', 'HEAD', 'POST']) {
      for (const kind of KINDS) {
        const res = await rawRequest(port, request(method, '/no/such/route', kind, {}));
        assert.equal(res.status, kind === 'none' || kind === 'wrong' ? 401 : 404, `${method} ${kind}`);
      }
    }
    const bad = await rawRequest(port, request('GET', '/v1/%zz', 'none', undefined));
    assert.equal(bad.status, 400);
    assert.doesNotMatch(bad.body, /%zz/);
    assert.equal((JSON.parse(bad.body) as { error: { type: string } }).error.type, 'invalid_request_error');
  });

  test('every registered route answers every spelling of its path as the plain path, for every key', async (t) => {
    for (const route of routes) {
      await t.test(`${route.method} ${route.url}`, async () => {
        const path = concretePath(route.url);
        const body = BODIES[`${route.method} ${route.url}`];
        const known = body !== undefined || route.method === 'GET' || route.method === 'HEAD';
        for (const kind of KINDS) {
          const plain = await rawRequest(port, request(route.method, path, kind, body));
          const unknown = await rawRequest(port, request(route.method, '/no/such/route', kind, body));
          const outcome = expectedOutcome(route.access, kind);
          if (outcome === 'served') {
            if (known) assert.equal(plain.status, 200, `${kind}: ${plain.body}`);
            else assert.ok(![401, 403, 404].includes(plain.status), `${kind}: ${plain.status}`);
          } else {
            assert.equal(plain.status, outcome, `${kind}: ${plain.body}`);
          }
          const cases = spellings(route, path);
          const answers = await inPool(
            cases.map((c) => () => rawRequest(port, request(route.method, c.target, kind, body, c.version))),
          );
          cases.forEach((c, i) => {
            const res = answers[i]!;
            const what = `${kind} key, ${c.name}: ${route.method} ${c.target} ${c.version ?? ''}`;
            if (c.expect === 'same') assert.equal(signature(res), signature(plain), what);
            else if (c.expect === 'unknown') assert.equal(signature(res), signature(unknown), what);
            else assert.equal(res.status, 400, what);
          });
        }
      });
    }
  });

  test('refused requests are logged with the reason and without key material; served ones name the key', async () => {
    const at = lines.length;
    const send = (target: string, kind: KeyKind, id: string) =>
      rawRequest(port, request('GET', target, kind, undefined, undefined, { 'x-request-id': id }));
    await send('/%6detrics', 'none', 'log-none');
    await send('/%6detrics', 'wrong', 'log-wrong');
    await send('/%6detrics', 'inference', 'log-scope');
    await send('/v%31/models', 'inference', 'log-ok');
    const line = (id: string) => lines.slice(at).find((l) => l.requestId === id && l.msg === 'request');
    assert.deepEqual(
      ['log-none', 'log-wrong', 'log-scope', 'log-ok'].map((id) => {
        const l = line(id);
        return [l?.route, l?.status, l?.denied, l?.apiKey];
      }),
      [
        ['/metrics', 401, 'no_key', undefined],
        ['/metrics', 401, 'unknown_key', undefined],
        ['/metrics', 403, 'missing_scope', 'app'],
        ['/v1/models', 200, undefined, 'app'],
      ],
    );
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of [INFERENCE_KEY, ADMIN_KEY, KEYS.wrong!])
      assert.ok(!text.includes(secret), 'a key was logged');
  });

  test('/readyz says ready or not per tier and nothing more', async () => {
    const res = await rawRequest(port, request('GET', '/readyz', 'none', undefined));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), {
      status: 'ready',
      ready: true,
      tiers: { echo: { ready: true } },
    });
  });
});

describe('a route missing from the access table', () => {
  const config = buildConfig(echoConfig({ auth: AUTH }), { baseDir: REPO_ROOT, env: {} });
  const offConfig = buildConfig(echoConfig(), { baseDir: REPO_ROOT, env: {} });

  test('cannot be registered, with API keys on or off', () => {
    for (const c of [config, offConfig]) {
      const app = Fastify();
      installAuth(app, c);
      assert.throws(
        () => app.get('/v1/not-in-the-table', async () => ({})),
        /no single access in src\/api\/scopes\.ts/,
      );
      // Registered next to a listed route, under another method, it still needs its own entry.
      assert.throws(() => app.delete('/v1/models', async () => ({})), /no single access/);
    }
  });

  test('registered from a plugin, it stops the app from starting', async () => {
    const app = Fastify();
    installAuth(app, config);
    void app.register(async (plugin) => {
      plugin.get('/admin/secret-report', async () => ({ secret: true }));
    });
    await assert.rejects(app.listen({ port: 0, host: '127.0.0.1' }), /no single access/);
    await app.close();
  });

  test('a table entry without its route stops the app from starting too', async () => {
    const app = Fastify();
    installAuth(app, config);
    app.get('/healthz', async () => ({}));
    await assert.rejects(async () => app.ready(), /lists unregistered routes: GET \/readyz/);
    await app.close();
  });
});
