/**
 * Step timeouts: with Billing stopped the payment step times out, the order fails with a
 * timeout reason and its stock is released; Billing started again later charges nothing.
 */
import { Stack } from './support/stack.js';

const stack = new Stack({
  env: {
    order: { SAGA_STEP_TIMEOUT_MS: '2000', SAGA_COMPENSATION_TIMEOUT_MS: '2000' },
    stock: { STOCK_CATALOG: JSON.stringify({ DESK: { quantity: 3, price: 20_000 } }) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000 }) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

test('payment step times out with Billing down; Billing back later does not charge', async () => {
  await stack.stop('billing');
  const placed = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'DESK', quantity: 2 }] });
  const order = await stack.finished(placed.body.orderId, 15_000);
  expect(order.status).toBe('FAILED');
  expect(order.failureReason).toBe('chargePayment timed out after 2000 ms waiting for payment.result');
  expect(order.history.map((h: any) => h.event)).toEqual(
    expect.arrayContaining(['cancelPayment sent', 'releaseStock requested', 'releaseStock done', 'order failed']),
  );
  expect((await stack.http('stock', '/stock/DESK')).body).toMatchObject({ available: 3, reserved: 0, sold: 0 });

  await stack.start('billing');
  // Billing now sees payment.request (expired) and payment.cancel, in whichever order.
  const payment = await waitForPayment(order.orderId);
  expect(['declined', 'cancelled']).toContain(payment.status);
  expect((await stack.http('billing', '/accounts/alice')).body).toMatchObject({
    held: 0,
    charged: 0,
    available: 100_000,
  });
  // The late reply, if any, changed nothing in the saga.
  expect((await stack.http('order', `/orders/${order.orderId}`)).body.status).toBe('FAILED');
  const confirmed = (await stack.readTopic('order.confirmed')).filter((r) => r.key === order.orderId);
  expect(confirmed).toHaveLength(0);
});

test('reservation step times out with Stock down; a late reservation is released', async () => {
  await stack.stop('stock');
  const placed = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'DESK', quantity: 1 }] });
  // Stock is down during the compensation too: the saga still ends, within its bounds.
  const order = await stack.finished(placed.body.orderId, 15_000);
  expect(order.status).toBe('FAILED');
  expect(order.failureReason).toMatch(/reserveStock timed out/);

  await stack.start('stock');
  // Stock now reserves (late) and then releases, in partition order: nothing stays held.
  const released = await waitFor(async () =>
    (await stack.readTopic('stock.released')).filter((r) => r.key === order.orderId),
  );
  expect(released).toHaveLength(1);
  expect((await stack.http('stock', '/stock/DESK')).body).toMatchObject({ available: 3, reserved: 0, sold: 0 });
});

async function waitFor<T extends unknown[]>(probe: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value.length > 0 || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitForPayment(orderId: string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { status, body } = await stack.http('billing', `/payments/${orderId}`);
    if (status === 200 || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('timeouts are counted by step, and the failures by reason', async () => {
  const metrics = (await stack.http('order', '/metrics')).body as string;
  expect(metrics).toMatch(/ordersaga_saga_timeouts_total\{step="chargePayment"\} 1/);
  expect(metrics).toMatch(/ordersaga_saga_timeouts_total\{step="reserveStock"\} 1/);
  expect(metrics).toMatch(/ordersaga_sagas_finished_total\{outcome="failed",reason="timeout"\} 2/);
  expect(metrics).toMatch(/ordersaga_saga_compensations_total\{compensation="cancelPayment"\} 1/);
});
