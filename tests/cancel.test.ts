/**
 * Cancelling an order (DELETE /orders/:id): at each phase its saga compensates what it did and
 * ends FAILED, cancelled, with one terminal event and one notification; an ended order is not
 * changed (409); a cancel racing the payment reply keeps every invariant.
 */
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, Stack } from './support/stack.js';

const world: World = {
  catalog: { LAMP: { quantity: 1_000, price: 4_000 } },
  // Customers of their own for the race, so that their payments are not queued behind alice's.
  accounts: {
    alice: 100_000_000,
    ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`racer-${i}`, 1_000_000])),
  },
};
const stack = new Stack({
  env: {
    // Long enough to cancel a step that waits for a stopped service; short enough to time one out.
    order: { SAGA_STEP_TIMEOUT_MS: '6000', SAGA_COMPENSATION_TIMEOUT_MS: '20000' },
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const cancel = (orderId: string) => stack.http('order', `/orders/${orderId}`, { method: 'DELETE' });
const place = async (customerId = 'alice') =>
  (await stack.placeOrder({ customerId, items: [{ sku: 'LAMP', quantity: 2 }] })).body.orderId as string;
const inPhase = (orderId: string, phase: string, timeoutMs = 10_000) =>
  eventually(
    `${orderId} to be ${phase}`,
    async () => {
      const { body } = await stack.http('order', `/orders/${orderId}`);
      return body.status === phase ? body : undefined;
    },
    timeoutMs,
  );

/** What a cancelled order leaves: FAILED, cancelled; one order.failed; one notification saying so. */
async function expectCancelled(orderId: string) {
  const order = await stack.finished(orderId, 40_000);
  expect(order).toMatchObject({ status: 'FAILED', failureReason: 'cancelled' });
  expect(order.history.map((h: { event: string }) => h.event)).toContain('cancel requested by the Order API');
  const notification = await eventually('the notification', async () => {
    const { status, body } = await stack.http('notification', `/notifications/${orderId}`);
    return status === 200 ? body : undefined;
  });
  expect(notification).toMatchObject({ outcome: 'failed', message: expect.stringContaining('is cancelled, as asked') });
  const failed = await stack.readTopicUntil('order.failed', `order.failed of ${orderId}`, (records) =>
    records.some((r) => r.key === orderId),
  );
  expect(failed.filter((r) => r.key === orderId)).toHaveLength(1);
  expect((await stack.readTopic('order.confirmed')).filter((r) => r.key === orderId)).toHaveLength(0);
  return order;
}

test('cancelled while Reserving (Stock down): the late reservation is released, nothing held', async () => {
  await stack.stop('stock');
  const orderId = await place();
  await inPhase(orderId, 'RESERVING');
  const answer = await cancel(orderId);
  expect(answer.status).toBe(202);
  expect(answer.body).toMatchObject({ orderId, status: 'RESERVING' });
  await stack.start('stock');
  await expectCancelled(orderId);
  await eventually('LAMP back to its level', async () => {
    const { body } = await stack.http('stock', '/stock/LAMP');
    return body.reserved === 0 ? body : undefined;
  });
});

test('cancelled while Charging (Billing down): the stock released, the payment voided or refused', async () => {
  await stack.stop('billing');
  const orderId = await place();
  await inPhase(orderId, 'CHARGING');
  expect((await cancel(orderId)).status).toBe(202);
  // Cancelling twice is cancelling once.
  expect((await cancel(orderId)).status).toBe(202);
  await stack.start('billing');
  const order = await expectCancelled(orderId);
  expect(order.history.filter((h: { event: string }) => h.event.startsWith('cancel requested'))).toHaveLength(1);
  await eventually('no hold on alice', async () => {
    const { body } = await stack.http('billing', '/accounts/alice');
    return body.held === 0 ? body : undefined;
  });
});

test('cancelled after a timeout began compensating: the compensations finish, the order ends cancelled', async () => {
  // Stock down: the reservation times out (6 s), and its compensation waits for Stock (20 s).
  await stack.stop('stock');
  const orderId = await place();
  const compensating = await inPhase(orderId, 'COMPENSATING', 15_000);
  expect(compensating.failureReason).toMatch(/reserveStock timed out/);
  expect((await cancel(orderId)).status).toBe(202);
  await stack.start('stock');
  await expectCancelled(orderId);
});

test('an ended order is not changed: 409 with why; an unknown one 404', async () => {
  const orderId = await place();
  const confirmed = await stack.finished(orderId);
  expect(confirmed.status).toBe('CONFIRMED');
  const refused = await cancel(orderId);
  expect(refused).toMatchObject({
    status: 409,
    body: { error: 'Conflict', message: `order ${orderId} is confirmed: an ended order cannot be cancelled` },
  });
  expect((await stack.http('order', `/orders/${orderId}`)).body.status).toBe('CONFIRMED');
  expect((await cancel('no-such-order')).status).toBe(404);
  // And its cancel was never sent.
  expect((await stack.readTopic('order.cancel')).filter((r) => r.key === orderId)).toHaveLength(0);
});

test('100 cancels racing the payment reply: every invariant holds, each order ends once', async () => {
  const seen = new Map<string, number>();
  const ids = await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const orderId = await place(`racer-${i % 10}`);
      // Once it asks for the payment, cancel at once or a little later: before the reply, with
      // it, or after the order is confirmed (409).
      await eventually(`${orderId} past Reserving`, async () => {
        const { body } = await stack.http('order', `/orders/${orderId}`);
        return body.status !== 'PENDING' && body.status !== 'RESERVING' ? true : undefined;
      });
      await new Promise((r) => setTimeout(r, (i % 50) * 30));
      const { status, body } = await cancel(orderId);
      expect([202, 409]).toContain(status);
      const found = status === 409 ? 'ended' : String(body.status);
      seen.set(found, (seen.get(found) ?? 0) + 1);
      return orderId;
    }),
  );
  const orders = await Promise.all(ids.map((id) => stack.finished(id, 40_000)));
  const cancelled = orders.filter((o) => o.failureReason === 'cancelled').length;
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED').length;
  expect(cancelled + confirmed).toBe(100);
  console.log(
    `100 cancels racing the payment reply: ${cancelled} cancelled, ${confirmed} confirmed; ` +
      `what each cancel found: ${JSON.stringify(Object.fromEntries(seen))} ` +
      `(${confirmed - (seen.get('ended') ?? 0)} accepted while Charging lost to the payment reply: confirmed)`,
  );
  await expectInvariants(stack, world);
}, 180_000);
