// A streamed response reports a mid-stream continuation in HTTP trailers (the headers left
// before it happened); the summary headers are declared up front in `Trailer`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startGateway, type TestGateway } from '../helpers/start-gateway.js';

let gw: TestGateway;
before(async () => {
  gw = await startGateway({
    tokenizer: { kind: 'bytes' },
    family: { dir: 'models/tiny' },
    tiers: { a: { kind: 'echo' }, b: { kind: 'echo' } },
    models: { m: { tier: 'a' } },
    resilience: { tiers: { a: { fault: { failAfterTokensRate: 1, failAfterTokens: 2 }, fallbacks: ['b'] } } },
  });
});
after(async () => {
  await gw.shutdown();
});

test('a streamed continuation is named in the trailers', async () => {
  const { trailerHeader, trailers, body } = await new Promise<{
    trailerHeader: string | undefined;
    trailers: NodeJS.Dict<string>;
    body: string;
  }>((resolve, reject) => {
    const req = request(
      new URL(`${gw.baseUrl}/v1/completions`),
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ trailerHeader: res.headers.trailer, trailers: res.trailers, body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'm', prompt: 'hello', max_tokens: 5, stream: true }));
  });
  assert.match(trailerHeader ?? '', /x-tiergate-continued-from/);
  assert.equal(trailers['x-tiergate-continued-from'], 'a');
  assert.equal(trailers['x-tiergate-served-by'], 'a, b');
  assert.match(trailers['x-tiergate-fallbacks'] ?? '', /^a -> b \(\w+\)$/, 'the move and its cause');
  assert.equal(body.match(/"finish_reason":"length"/g)?.length, 1, 'one finish');
  assert.ok(body.endsWith('data: [DONE]\n\n'));
});
