/**
 * Retrying a failed order (POST /orders/:id/retry): its saga runs again from its first step as
 * a new attempt of the same order, once per token, for a failure a retry may mend (timed out,
 * out of stock until a restock, declined until a top-up); the others are refused with why. Each
 * attempt reserves, charges and is told of anew, and every invariant holds over all of them.
 */
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, Stack } from './support/stack.js';

const world: World = {
  catalog: { DESK: { quantity: 10, price: 20_000 }, LAMP: { quantity: 1, price: 4_000 } },
  accounts: { alice: 1_000_000, bob: 1_000 },
};
const stack = new Stack({
  env: {
    order: { SAGA_STEP_TIMEOUT_MS: '2000', SAGA_COMPENSATION_TIMEOUT_MS: '5000' },
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const json = { 'content-type': 'application/json' };
const retry = (orderId: string, token?: string) =>
  stack.http('order', `/orders/${orderId}/retry`, {
    method: 'POST',
    headers: token ? { 'idempotency-key': token } : {},
  });
const place = async (customerId: string, sku: string, quantity: number) =>
  stack.finished((await stack.placeOrder({ customerId, items: [{ sku, quantity }] })).body.orderId, 15_000);
/** Waits until the order's attempt `attempt` has ended. */
const attemptEnded = (orderId: string, attempt: number) =>
  eventually(
    `attempt ${attempt} of ${orderId} to end`,
    async () => {
      const { body } = await stack.http('order', `/orders/${orderId}`);
      return body.attempt === attempt && (body.status === 'CONFIRMED' || body.status === 'FAILED') ? body : undefined;
    },
    20_000,
  );

test('timed out (Billing down), then retried: attempt 2 is confirmed, charged once, told twice', async () => {
  await stack.stop('billing');
  const failed = await place('alice', 'DESK', 2);
  expect(failed).toMatchObject({ status: 'FAILED', attempt: 1, failureReason: expect.stringMatching(/timed out/) });
  await stack.start('billing');

  const asked = await retry(failed.orderId, 'retry-1');
  expect(asked).toMatchObject({ status: 202, body: { orderId: failed.orderId, status: 'FAILED', attempt: 1 } });
  const confirmed = await attemptEnded(failed.orderId, 2);
  expect(confirmed).toMatchObject({ status: 'CONFIRMED', attempt: 2, total: 40_000 });
  expect(confirmed.failureReason).toBeUndefined();
  const events = confirmed.history.map((h: { event: string }) => h.event);
  // The first attempt's story is kept, then the retry's.
  expect(events).toEqual(
    expect.arrayContaining([
      'order placed',
      expect.stringMatching(/^chargePayment timed out/),
      'order failed',
      'retry retry-1 requested by the Order API: attempt 2',
      'order confirmed',
    ]),
  );

  // The same token again: the order as it is, no third attempt. Another token: 409, it is confirmed.
  expect(await retry(failed.orderId, 'retry-1')).toMatchObject({ status: 202, body: { attempt: 2 } });
  expect(await retry(failed.orderId, 'retry-2')).toMatchObject({
    status: 409,
    body: { message: `order ${failed.orderId} is confirmed: only a failed order can be retried` },
  });

  // Each attempt was told of: the failure, then the confirmation; GET gives the newest.
  const notifications = await eventually('both notifications', async () => {
    const { body } = await stack.http('notification', '/notifications?customerId=alice');
    const mine = (body as any[]).filter((n) => n.orderId === failed.orderId);
    return mine.length === 2 ? mine : undefined;
  });
  expect(notifications.map((n) => [n.attempt ?? 1, n.outcome]).sort()).toEqual([
    [1, 'failed'],
    [2, 'confirmed'],
  ]);
  expect((await stack.http('notification', `/notifications/${failed.orderId}`)).body).toMatchObject({
    attempt: 2,
    outcome: 'confirmed',
  });
  expect((await stack.http('billing', `/payments/${failed.orderId}`)).body).toMatchObject({
    status: 'captured',
    amount: 40_000,
    paymentId: `pay-${failed.orderId}.2`,
  });
  // An earlier run, by ?attempt=: the first attempt's request came late to Billing, and took nothing.
  const first = await stack.http('billing', `/payments/${failed.orderId}?attempt=1`);
  expect(['declined', 'cancelled']).toContain(first.body.status);
  expect((await stack.http('notification', `/notifications/${failed.orderId}?attempt=1`)).body).toMatchObject({
    outcome: 'failed',
    message: expect.stringContaining('timed out'),
  });
  expect(await stack.http('billing', `/payments/${failed.orderId}?attempt=5`)).toMatchObject({
    status: 404,
    body: { message: `no payment for ${failed.orderId} (attempt 5)` },
  });
  expect((await stack.http('notification', `/notifications/${failed.orderId}?attempt=0`)).status).toBe(400);
});

test('out of stock until a restock, declined until a top-up: each retried once the world changed', async () => {
  const outOfStock = await place('alice', 'LAMP', 3);
  expect(outOfStock).toMatchObject({ status: 'FAILED', failureReason: 'out of stock: LAMP: 3 requested, 1 available' });
  // Retried before the restock, it fails again, as attempt 2.
  expect((await retry(outOfStock.orderId)).status).toBe(202);
  expect(await attemptEnded(outOfStock.orderId, 2)).toMatchObject({ status: 'FAILED' });
  const restock = { method: 'POST', headers: { ...json, 'idempotency-key': 'lamps' }, body: '{"quantity":2}' };
  expect((await stack.http('stock', '/stock/LAMP/restock', restock)).status).toBe(202);
  await eventually('LAMP restocked', async () => {
    const { body } = await stack.http('stock', '/stock/LAMP');
    return body.available === 3 ? body : undefined;
  });
  expect((await retry(outOfStock.orderId)).status).toBe(202);
  expect(await attemptEnded(outOfStock.orderId, 3)).toMatchObject({ status: 'CONFIRMED', total: 12_000 });

  const declined = await place('bob', 'DESK', 1);
  expect(declined.failureReason).toMatch(/^payment declined: insufficient credit/);
  const topUp = { method: 'POST', headers: { ...json, 'idempotency-key': 'bob-1' }, body: '{"amount":19000}' };
  expect((await stack.http('billing', '/accounts/bob/top-up', topUp)).status).toBe(202);
  await eventually('bob topped up', async () => {
    const { body } = await stack.http('billing', '/accounts/bob');
    return body.available === 20_000 ? body : undefined;
  });
  expect((await retry(declined.orderId, 'after-top-up')).status).toBe(202);
  expect(await attemptEnded(declined.orderId, 2)).toMatchObject({ status: 'CONFIRMED', total: 20_000 });
});

test('what a retry cannot mend is refused with why: an unknown SKU, a cancel; an unknown order is 404', async () => {
  const unknown = await place('alice', 'NO-SUCH-SKU', 1);
  expect(await retry(unknown.orderId)).toMatchObject({
    status: 409,
    body: {
      message: `order ${unknown.orderId} failed for good (unknown_sku: unknown SKU NO-SUCH-SKU): a retry cannot mend it`,
    },
  });
  await stack.stop('billing');
  const running = (await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'DESK', quantity: 1 }] })).body;
  await eventually('it to charge', async () => {
    const { body } = await stack.http('order', `/orders/${running.orderId}`);
    return body.status === 'CHARGING' ? body : undefined;
  });
  expect(await retry(running.orderId)).toMatchObject({
    status: 409,
    body: { message: `order ${running.orderId} is charging: only a failed order can be retried` },
  });
  expect((await stack.http('order', `/orders/${running.orderId}`, { method: 'DELETE' })).status).toBe(202);
  await stack.start('billing');
  expect(await stack.finished(running.orderId, 15_000)).toMatchObject({ status: 'FAILED', failureReason: 'cancelled' });
  expect((await retry(running.orderId)).status).toBe(409);
  expect((await retry('no-such-order')).status).toBe(404);
  expect(await retry(unknown.orderId, 'not a token!')).toMatchObject({ status: 400 });
  // None of the refused retries was sent.
  const sent = (await stack.readTopic('order.retry')).map((r) => r.key);
  expect(sent).not.toContain(unknown.orderId);
  expect(sent).not.toContain(running.orderId);
});

test('over every attempt: stock conserved, each confirmed attempt charged once, each attempt told once', async () => {
  await expectInvariants(stack, world);
});
