import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuthenticationError, PermissionDeniedError } from 'openai';
import OpenAI from 'openai';
import { sha256Hex } from '../../src/config/index.js';
import { echoConfig, startGateway, type TestGateway } from '../helpers/start-gateway.js';

const USER_KEY = 'sk-test-user-0123456789';
const ADMIN_KEY = 'sk-test-admin-0123456789';

describe('API keys', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(
      echoConfig({
        auth: {
          enabled: true,
          keys: [
            { name: 'app', sha256: sha256Hex(USER_KEY), scopes: ['inference'] },
            { name: 'ops', key: ADMIN_KEY, scopes: ['inference', 'admin'] },
          ],
        },
      }),
      USER_KEY,
    );
  });
  after(async () => gw.shutdown());

  test('a valid key is accepted (the SDK sends it as a Bearer token)', async () => {
    const res = await gw.client.completions.create({
      model: 'tiergate-echo',
      prompt: 'hello',
      max_tokens: 3,
    });
    assert.equal(res.choices[0]!.text, 'hel');
  });

  test('a missing or wrong key gets 401 with OpenAI error JSON', async () => {
    const noKey = await fetch(`${gw.baseUrl}/v1/models`);
    assert.equal(noKey.status, 401);
    const body = (await noKey.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'invalid_api_key');
    const wrong = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: 'sk-wrong-key-000000', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), AuthenticationError);
  });

  test('admin routes need the admin scope', async () => {
    const asUser = await fetch(`${gw.baseUrl}/metrics`, { headers: { authorization: `Bearer ${USER_KEY}` } });
    assert.equal(asUser.status, 403);
    const asAdmin = await fetch(`${gw.baseUrl}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(asAdmin.status, 200);
    const tiers = await fetch(`${gw.baseUrl}/admin/tiers`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    assert.equal(tiers.status, 200);
    const sdkAdmin = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: ADMIN_KEY, maxRetries: 0 });
    assert.equal((await sdkAdmin.models.list()).data.length, 1);
    void PermissionDeniedError;
  });

  test('probes stay open', async () => {
    assert.equal((await fetch(`${gw.baseUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${gw.baseUrl}/readyz`)).status, 200);
  });

  test('the configured plain-text key is not kept in memory', () => {
    const keys = gw.gateway.config.auth.keys;
    assert.ok(keys.every((k) => k.key === undefined && typeof k.sha256 === 'string'));
  });
});
