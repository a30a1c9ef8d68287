import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../helpers/start-gateway.js';
import { complete, KEYS, limitsConfig, RPM, withinOneMinute } from './limits-harness.js';
import { limitTests, metric } from './limit-suite.js';

/** A free loopback port (closed again before redis-server takes it). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** A real redis-server on loopback, without persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 200 && !/Ready to accept connections/.test(out); i++) await sleep(50);
  assert.match(out, /Ready to accept connections/, out);
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

interface Replica {
  readonly url: string;
  readonly child: ChildProcess;
}

/** One gateway process (test/limits/gateway-process.ts) with the Redis store. */
async function startReplica(config: Record<string, unknown>): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/limits/gateway-process.ts', JSON.stringify(config)],
    {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let url: string | undefined;
  // Up to 90 s: tsx compiles the gateway on start, slow on a loaded 2-core machine.
  for (let i = 0; i < 1800 && url === undefined && child.exitCode === null; i++) {
    url = /\{"url":"(http:[^"]+)"\}/.exec(out)?.[1];
    if (url === undefined) await sleep(50);
  }
  assert.ok(url, out);
  return { url, child };
}

async function stopReplica(r: Replica): Promise<void> {
  if (r.child.exitCode !== null) return;
  r.child.stdin!.end();
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
  await once(r.child, 'exit');
  clearTimeout(timer);
}

const LEASE_MS = 1_500;

/** One prefix for the whole run, shared by every replica (the counters' keys must match). */
const PREFIX = `tiergate-test-${process.pid}-${Date.now()}`;

function redisConfig(port: number, onStoreError: 'open' | 'closed'): Record<string, unknown> {
  return limitsConfig({
    store: 'redis',
    onStoreError,
    // Each run its own keys: a daily budget's counter would outlive a run in a shared Redis.
    redis: {
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: PREFIX,
      commandTimeoutMs: 300,
      connectTimeoutMs: 300,
      // Short, so a dead replica's stream slots come free within the test.
      streamLeaseMs: LEASE_MS,
    },
  });
}

interface Running {
  /** `complete` once the stream's last event came, `cut` if the connection ended first. */
  readonly done: Promise<'complete' | 'cut'>;
}

/** Starts a streamed completion and resolves once its first token came (so it holds its slot). */
async function startStream(url: string, key: string, body: Record<string, unknown>): Promise<Running> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()));
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('data: {')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream ended before its first token');
    text += decoder.decode(value, { stream: true });
  }
  const done = (async (): Promise<'complete' | 'cut'> => {
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return text.includes('data: [DONE]') ? 'complete' : 'cut';
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      return 'cut';
    }
  })();
  return { done };
}

/** Polls until `check` holds (the gateway reconnects by itself), or fails after `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

describe('key limits, Redis store shared by two gateway processes', () => {
  let redisPort: number;
  let redis: ChildProcess;
  let replicas: Replica[] = [];

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    replicas = await Promise.all([
      startReplica(redisConfig(redisPort, 'open')),
      startReplica(redisConfig(redisPort, 'open')),
    ]);
  });

  after(async () => {
    await Promise.all(replicas.map(stopReplica));
    await stopRedis(redis);
  });

  limitTests(() => replicas.map((r) => r.url));

  it("frees a dead replica's stream slots once their leases expire, and keeps a live replica's renewed", async () => {
    const dying = await startReplica(redisConfig(redisPort, 'open'));
    const [a] = replicas as [Replica, Replica];
    // One stream on the replica that dies, then two long ones (250 tokens at 20 ms: 5 s, longer
    // than three leases) on a live replica; each holds its slot once its first token came.
    const long = { model: 'tiergate-slow', prompt: 'slow', max_tokens: 250 };
    const short = { model: 'tiergate-slow', prompt: 'slow', max_tokens: 1 };
    const held: Running[] = [];
    try {
      held.push(await startStream(dying.url, KEYS.streams, long));
      held.push(await startStream(a.url, KEYS.streams, long), await startStream(a.url, KEYS.streams, long));
      assert.equal((await complete(a.url, KEYS.streams, short)).status, 429, 'all three slots held');
      dying.child.kill('SIGKILL');
      await once(dying.child, 'exit');
      const full = await complete(a.url, KEYS.streams, short);
      assert.equal(full.status, 429, 'the dead replica holds its slot until its lease expires');
      // Its lease ends within LEASE_MS of its last renewal; the live streams' are renewed.
      await sleep(LEASE_MS + 100);
      const freed = complete(a.url, KEYS.streams, { ...short, max_tokens: 40 });
      await sleep(200);
      // The freed slot is taken again: had the live streams' leases not been renewed (they have
      // run longer than a lease by now), their slots would be free too.
      const refused = await complete(a.url, KEYS.streams, short);
      assert.equal(refused.status, 429, "a live replica's running streams keep their slots");
      assert.equal((await freed).status, 200);
      for (const r of held.slice(1)) assert.equal(await r.done, 'complete');
    } finally {
      if (dying.child.exitCode === null && dying.child.signalCode === null) dying.child.kill('SIGKILL');
      await Promise.all(held.map((r) => r.done.catch(() => undefined)));
    }
  });

  it('fails open while Redis is down (metric, admitted without limits), then enforces again when it is back', async () => {
    const [a, b] = replicas as [Replica, Replica];
    // A metered stream (16-token leases, 20 ms a token) running when Redis goes: it goes on unmetered.
    const running = complete(a.url, KEYS.meter, { model: 'tiergate-slow', prompt: 'x', max_tokens: 60 });
    await sleep(400);
    await stopRedis(redis);
    const whole = await running;
    assert.equal(whole.status, 200);
    assert.equal(whole.body.usage?.completion_tokens, 60, 'fail-open: the stream was not cut');
    // Over the RPM limit and beyond: with Redis gone every request is admitted (fail-open).
    const down = await Promise.all(
      Array.from({ length: RPM + 10 }, (_, i) =>
        complete((i % 2 ? b : a).url, KEYS.rpm, { prompt: 'x', max_tokens: 1 }),
      ),
    );
    assert.deepEqual([...new Set(down.map((r) => r.status))], [200]);
    assert.ok((await metric(a.url, 'tiergate_limit_store_errors_total{store="redis",mode="open"}')) > 0);
    assert.equal(await metric(a.url, 'tiergate_limit_store_up{store="redis"}'), 0);
    redis = await startRedis(redisPort);
    await eventually('both replicas reconnect', 15_000, async () =>
      (await Promise.all([a, b].map((r) => metric(r.url, 'tiergate_limit_store_up{store="redis"}')))).every(
        (v) => v === 1,
      ),
    );
    // The new Redis is empty: a fresh window, and one limit across both replicas again.
    await withinOneMinute();
    const back = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        complete((i % 2 ? b : a).url, KEYS.rpm, { prompt: 'x', max_tokens: 1 }),
      ),
    );
    assert.equal(back.filter((r) => r.status === 200).length, RPM);
  });

  it('fails closed when configured: 503 while Redis is down, served again when it is back', async () => {
    const closed = await startReplica(redisConfig(redisPort, 'closed'));
    try {
      const ok = await complete(closed.url, KEYS.scoped, { prompt: 'x', max_tokens: 1 });
      assert.equal(ok.status, 200);
      // A metered stream running when Redis goes ends at its next lease (fail-closed).
      const running = complete(closed.url, KEYS.meter, {
        model: 'tiergate-slow',
        prompt: 'x',
        max_tokens: 60,
      });
      await sleep(400);
      await stopRedis(redis);
      const cut = await running;
      assert.equal(cut.status, 200);
      assert.equal(cut.body.choices?.[0]?.finish_reason, 'length');
      assert.ok(
        (cut.body.usage?.completion_tokens ?? 60) < 60,
        `${cut.body.usage?.completion_tokens} tokens`,
      );
      const down = await complete(closed.url, KEYS.scoped, { prompt: 'x', max_tokens: 1 });
      assert.equal(down.status, 503);
      assert.equal(down.body.error?.code, 'service_unavailable');
      assert.equal(down.headers.get('retry-after'), '1');
      assert.ok(
        (await metric(closed.url, 'tiergate_limit_store_errors_total{store="redis",mode="closed"}')) > 0,
      );
      redis = await startRedis(redisPort);
      await eventually('served again once Redis is back', 15_000, async () => {
        const r = await complete(closed.url, KEYS.scoped, { prompt: 'x', max_tokens: 1 });
        return r.status === 200;
      });
    } finally {
      await stopReplica(closed);
    }
  });
});
