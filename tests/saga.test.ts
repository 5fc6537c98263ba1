/**
 * The order saga end to end: the four services as processes, a real Kafka broker.
 */
import { Stack } from './support/stack.js';

const stack = new Stack({
  env: {
    stock: {
      STOCK_CATALOG: JSON.stringify({ BOOK: { quantity: 10, price: 1_500 }, LAMP: { quantity: 1, price: 4_000 } }),
    },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000, bob: 2_000 }) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const stock = async (sku: string) => (await stack.http('stock', `/stock/${sku}`)).body;
const account = async (id: string) => (await stack.http('billing', `/accounts/${id}`)).body;
const notificationsOf = async (orderId: string) =>
  ((await stack.http('notification', '/notifications')).body as any[]).filter((n) => n.orderId === orderId);
type Topic = Parameters<Stack['readTopic']>[0];
const messagesFor = async (topic: Topic, orderId: string) =>
  (await stack.readTopic(topic)).filter((r) => r.key === orderId);
/** The order's messages on a topic once there is one (a terminal event may trail its order's GET). */
const publishedFor = async (topic: Topic, orderId: string) =>
  (await stack.readTopicUntil(topic, `a ${topic} for ${orderId}`, (all) => all.some((r) => r.key === orderId))).filter(
    (r) => r.key === orderId,
  );

test('happy path: confirmed, stock decremented, account charged, one notification', async () => {
  const before = { book: await stock('BOOK'), alice: await account('alice') };
  const placed = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'BOOK', quantity: 3 }] });
  expect(placed.status).toBe(202);
  expect(placed.body.status).toBe('PENDING');

  const order = await stack.finished(placed.body.orderId);
  expect(order).toMatchObject({ status: 'CONFIRMED', total: 4_500, step: null });
  expect(order.history.map((h: any) => h.event)).toEqual([
    'order placed',
    'reserveStock requested',
    'stock reserved',
    'chargePayment requested',
    'payment approved',
    'order confirmed',
  ]);
  for (const entry of order.history) expect(Date.parse(entry.at)).not.toBeNaN();

  // Stock turns the reservation into a sale when it sees order.confirmed, just after the saga ends.
  const book = await waitFor(
    () => stock('BOOK'),
    (level) => level.reserved === 0,
  );
  expect(book).toMatchObject({ available: before.book.available - 3, sold: before.book.sold + 3, reserved: 0 });
  // Billing captures the authorization when it sees order.confirmed, as Stock sells.
  const alice = await waitFor(
    () => account('alice'),
    (a) => a.held === 0,
  );
  expect(alice).toMatchObject({ charged: before.alice.charged + 4_500, held: 0 });
  // The notification is written after order.confirmed is committed: give it a moment.
  const notifications = await waitFor(
    () => notificationsOf(order.orderId),
    (n) => n.length > 0,
  );
  expect(notifications).toHaveLength(1);
  expect(notifications[0]).toMatchObject({ outcome: 'confirmed', customerId: 'alice' });
  expect(await publishedFor('order.confirmed', order.orderId)).toHaveLength(1);
});

test('out of stock: order.failed, and no payment.request was ever sent', async () => {
  const placed = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'LAMP', quantity: 2 }] });
  const order = await stack.finished(placed.body.orderId);
  expect(order.status).toBe('FAILED');
  expect(order.failureReason).toMatch(/out of stock: LAMP: 2 requested, 1 available/);

  expect(await messagesFor('payment.request', order.orderId)).toHaveLength(0);
  const failed = await publishedFor('order.failed', order.orderId);
  expect(failed).toHaveLength(1);
  expect(failed[0]!.json.payload).toMatchObject({ step: 'reserveStock' });
  expect(await stock('LAMP')).toMatchObject({ available: 1, reserved: 0 });
});

test('a SKU not in the catalogue: its own reason, not a stock shortage, and no payment', async () => {
  const placed = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'NOPE-1', quantity: 1 }] });
  const order = await stack.finished(placed.body.orderId);
  expect(order).toMatchObject({ status: 'FAILED', failureReason: 'unknown SKU NOPE-1' });
  expect(await messagesFor('payment.request', order.orderId)).toHaveLength(0);
  const [failed] = await publishedFor('order.failed', order.orderId);
  expect(failed!.json.payload).toMatchObject({ step: 'reserveStock', reason: 'unknown SKU NOPE-1' });
});

test('payment declined: stock.release before order.failed, stock back to its level', async () => {
  const before = await stock('LAMP');
  const bobBefore = await account('bob');
  const placed = await stack.placeOrder({ customerId: 'bob', items: [{ sku: 'LAMP', quantity: 1 }] });
  const order = await stack.finished(placed.body.orderId);
  expect(order.status).toBe('FAILED');
  expect(order.failureReason).toMatch(/payment declined: insufficient credit/);
  expect(order.history.map((h: any) => h.event)).toEqual(
    expect.arrayContaining(['releaseStock requested', 'releaseStock done', 'order failed']),
  );

  // The causal chain: release requested -> released -> failed, each caused by the one before.
  const [release] = await messagesFor('stock.release', order.orderId);
  const [released] = await messagesFor('stock.released', order.orderId);
  const [failed] = await publishedFor('order.failed', order.orderId);
  expect(released!.json.causationId).toBe(release!.json.id);
  expect(failed!.json.causationId).toBe(released!.json.id);
  expect(Date.parse(release!.json.timestamp)).toBeLessThanOrEqual(Date.parse(failed!.json.timestamp));

  expect(await stock('LAMP')).toMatchObject({ available: before.available, reserved: 0, sold: before.sold });
  expect(await account('bob')).toEqual(bobBefore);
});

async function waitFor<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('saga metrics count what happened: outcomes by reason, compensations', async () => {
  const metrics = (await stack.http('order', '/metrics')).body as string;
  const value = (series: string) =>
    Number(
      metrics
        .split('\n')
        .find((l) => l.startsWith(series + ' '))
        ?.split(' ')[1] ?? 0,
    );
  expect(value('ordersaga_sagas_finished_total{outcome="confirmed",reason="none"}')).toBe(1);
  expect(value('ordersaga_sagas_finished_total{outcome="failed",reason="out_of_stock"}')).toBe(1);
  expect(value('ordersaga_sagas_finished_total{outcome="failed",reason="payment_declined"}')).toBe(1);
  expect(value('ordersaga_sagas_finished_total{outcome="failed",reason="unknown_sku"}')).toBe(1);
  expect(value('ordersaga_saga_compensations_total{compensation="releaseStock"}')).toBe(1);
  expect(value('ordersaga_sagas_started_total')).toBe(4);
});
