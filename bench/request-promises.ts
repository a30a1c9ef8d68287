/**
 * node --import tsx bench/request-promises.ts — promises created per request, the gateway's
 * against a bare fastify handler's, counted with V8's promise hooks (deterministic, unlike a
 * timing: each promise is an allocation and usually a microtask turn on the request path).
 *
 * Both servers run in this process on the echo tier's bench request (bench/gateway.ts's), with
 * logging and metrics on for the gateway. The client sends one request at a time over a
 * keep-alive connection with callbacks only, so every promise counted is a server's. 200
 * requests warm up, 500 are counted.
 */
import { request as httpRequest, Agent } from 'node:http';
import { promiseHooks } from 'node:v8';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { buildConfig } from '../src/config/index.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer } from '../src/server.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BODY = JSON.stringify({
  model: 'tiergate-echo',
  prompt: 'The county grand jury said Friday',
  max_tokens: 16,
});
const WARMUP = 200;
const COUNTED = 500;

/** Sends `n` requests one after another (callbacks, no promises), then calls `done`. */
function send(url: string, n: number, done: (body: string) => void): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let left = n;
  let last = '';
  const one = (): void => {
    const req = httpRequest(
      `${url}/v1/completions`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${text}`);
          last = text;
          if (--left > 0) one();
          else {
            agent.destroy();
            done(last);
          }
        });
      },
    );
    req.end(BODY);
  };
  one();
}

/** Promises created per request while `n` requests are served. */
function count(url: string, n: number): Promise<{ perRequest: number; body: string }> {
  return new Promise((resolve) => {
    send(url, WARMUP, () => {
      let created = 0;
      const stop = promiseHooks.onInit(() => void created++);
      send(url, n, (body) => {
        stop();
        // The resolve() below is this script's own: not counted (stop() ran first).
        resolve({ perRequest: created / n, body });
      });
    });
  });
}

const config = buildConfig(
  {
    server: { port: 0 },
    logging: { level: 'info' },
    family: { dir: 'models/tiny' },
    tiers: { echo: { kind: 'echo' } },
    models: { 'tiergate-echo': { tier: 'echo' } },
  },
  { baseDir: ROOT, env: {} },
);
// Logging on, as in production, to a discarded destination.
const gateway = await startServer(config, createLogger('info', { write: () => {} }));
const gw = await count(gateway.url, COUNTED);

const bare = Fastify({ logger: false });
bare.post('/v1/completions', async (_req, reply) =>
  reply.type('application/json; charset=utf-8').send(gw.body),
);
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });
const base = await count(bareUrl, COUNTED);

console.log(`promises per request (${COUNTED} requests after ${WARMUP} of warm-up, one at a time)`);
console.log(`  bare fastify handler  ${base.perRequest.toFixed(1)}`);
console.log(
  `  gateway, echo tier    ${gw.perRequest.toFixed(1)}  (+${(gw.perRequest - base.perRequest).toFixed(1)})`,
);
await bare.close();
await gateway.shutdown();
