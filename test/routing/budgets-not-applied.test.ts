import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoConfig, startGateway, type TestGateway } from '../helpers/start-gateway.js';

/**
 * Budgets sent for a pinned model (or with a pinned tier) are not silently dropped: the response
 * says they were not applied and why; a routed model applies them and says nothing.
 */
describe('budgets for a pinned model', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(
      echoConfig({
        tiers: { a: { kind: 'echo', contextLength: 256 }, b: { kind: 'echo', contextLength: 256 } },
        models: { 'tiny-a': { tier: 'a' }, tiny: { tier: 'a' } },
        routing: {
          byModel: { tiny: 'p' },
          policies: { p: { tiers: ['a', 'b'], objective: 'cheapest', costPer1kTokens: { a: 2, b: 1 } } },
        },
      }),
    );
  });
  after(async () => gw.shutdown());

  const post = (model: string, headers: Record<string, string>, path = '/v1/completions') =>
    fetch(`${gw.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, prompt: 'hi', max_tokens: 2 }),
    });

  it('a pinned model with a latency budget is served as named, with the reason in a header', async () => {
    const res = await post('tiny-a', { 'x-tiergate-latency-budget-ms': '100' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'a');
    assert.equal(
      res.headers.get('x-tiergate-budgets-not-applied'),
      'model tiny-a is pinned to tier a and no policy applies',
    );
  });

  it('a pinned model with a policy named is routed by that policy (honoured, no notice)', async () => {
    const res = await post('tiny-a', { 'x-tiergate-policy': 'p', 'x-tiergate-latency-budget-ms': '100' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-policy'), 'p');
    assert.equal(res.headers.get('x-tiergate-tier'), 'b');
    assert.equal(res.headers.get('x-tiergate-budgets-not-applied'), null);
  });

  it('a pinned tier with a policy says the policy was not applied', async () => {
    const res = await post('tiny', { 'x-tiergate-tier': 'a', 'x-tiergate-policy': 'p' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'a');
    assert.equal(res.headers.get('x-tiergate-budgets-not-applied'), 'policy p not applied: tier pinned to a');
  });

  it('the routed model applies the budgets and carries no notice; explain says the same', async () => {
    const routed = await post('tiny', { 'x-tiergate-latency-budget-ms': '100' });
    assert.equal(routed.status, 200);
    assert.equal(routed.headers.get('x-tiergate-budgets-not-applied'), null);
    const explain = (await (
      await post('tiny-a', { 'x-tiergate-accuracy-floor': '0.5' }, '/v1/route/explain')
    ).json()) as { budgetsNotApplied?: string };
    assert.equal(explain.budgetsNotApplied, 'model tiny-a is pinned to tier a and no policy applies');
  });
});
