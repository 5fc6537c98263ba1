/**
 * Effects are safe in depth: Stock's reservation and Billing's authorization are holds that only
 * order.confirmed makes final. A hold that no saga settles (here: requests for orders that have
 * no saga, written by a foreign writer) is released after the hold time, once, counted and
 * logged; a confirmed order's hold never is, even when order.confirmed reaches Stock and Billing
 * after they were down for longer than the hold time, or twice. Notification tells nobody of an
 * order that has no saga.
 *
 * The tests are steps of one scenario on one clock: the unknown orders' holds are taken first,
 * expire while the late-confirmation step runs, and are checked after it.
 */
import { initial, type Payload, type SagaTopic } from '@ordersaga/runtime';
import { eventually, sleep, Stack, type Component, type TopicRecord } from './support/stack.js';

const HOLD_MS = 15_000;
const stack = new Stack({
  env: {
    // Holds outlast any saga: two 5 s steps and a 2 s compensation.
    order: { SAGA_STEP_TIMEOUT_MS: '5000', SAGA_COMPENSATION_TIMEOUT_MS: '2000' },
    stock: { STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 100, price: 100 } }), HOLD_TIME_MS: String(HOLD_MS) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000 }), HOLD_TIME_MS: String(HOLD_MS) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const suffix = Math.random().toString(36).slice(2, 8);
const ghost = {
  reservation: `ghost-stock-${suffix}`,
  payment: `ghost-pay-${suffix}`,
  confirmed: `ghost-confirmed-${suffix}`,
  failed: `ghost-failed-${suffix}`,
};

/** A well-formed message for an order no saga knows: what a bug or a foreign writer would send. */
function foreign<T extends SagaTopic>(topic: T, orderId: string, payload: Payload<T>) {
  const { envelope } = initial(topic, orderId, payload, new Date());
  return stack.produce(topic, [{ key: orderId, value: JSON.stringify(envelope) }]);
}

const get = async (service: Component, path: string) => (await stack.http(service, path)).body;
const metric = async (service: Component, series: string) => {
  const text = (await get(service, '/metrics')) as string;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.split(' ')[1] ?? NaN);
};
let heldSince = 0;

test('a reservation and a payment for an order that has no saga are held, not taken', async () => {
  heldSince = Date.now();
  await foreign('stock.check.request', ghost.reservation, { items: [{ sku: 'PEN', quantity: 3 }] });
  await foreign('payment.request', ghost.payment, {
    customerId: 'alice',
    amount: 700,
    expiresAt: Date.now() + 3_600_000,
  });
  await eventually('the ghost reservation', async () =>
    (await get('stock', '/stock/PEN')).reserved === 3 ? true : undefined,
  );
  const payment = await eventually('the ghost authorization', async () => {
    const body = await get('billing', `/payments/${ghost.payment}`);
    return body.status === 'authorized' ? body : undefined;
  });
  expect(payment).toMatchObject({ amount: 700, customerId: 'alice' });
  expect(await get('billing', '/accounts/alice')).toMatchObject({ held: 700, charged: 0, available: 99_300 });
});

test("a confirmed order's hold is never voided, also when order.confirmed arrives late or twice", async () => {
  // Billing paused: the saga waits at Charging once Stock has reserved.
  stack.signal('billing', '0', 'SIGSTOP');
  const { body: placed } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PEN', quantity: 2 }] });
  await eventually('the saga to reach Charging', async () =>
    (await get('order', `/orders/${placed.orderId}`)).status === 'CHARGING' ? true : undefined,
  );
  const reservedAt = Date.now();
  // The orchestrator paused, Billing authorizes; then Stock and Billing stop before the saga
  // confirms, and stay down for longer than the hold time.
  stack.signal('order', '0', 'SIGSTOP');
  stack.signal('billing', '0', 'SIGCONT');
  await eventually('the authorization', async () =>
    (await get('billing', `/payments/${placed.orderId}`)).status === 'authorized' ? true : undefined,
  );
  await Promise.all([stack.stop('stock'), stack.stop('billing')]);
  stack.signal('order', '0', 'SIGCONT');
  const order = await stack.finished(placed.orderId);
  expect(order.status).toBe('CONFIRMED');
  await sleep(reservedAt + HOLD_MS + 3_000 - Date.now());

  // Back after the hold time: order.confirmed is waiting for both, and makes the holds final.
  await Promise.all([stack.start('stock'), stack.start('billing')]);
  const captured = await eventually('the capture', async () => {
    const body = await get('billing', `/payments/${placed.orderId}`);
    return body.status === 'captured' ? body : undefined;
  });
  expect(captured).toMatchObject({ amount: 200 });
  await eventually('the sale', async () => ((await get('stock', '/stock/PEN')).sold === 2 ? true : undefined));
  // Each row's versions, once the last (shown over HTTP above) is readable on the topic too.
  const rows = async (topic: 'stock.state' | 'billing.state', last: string) => {
    const statuses = (records: TopicRecord[]) =>
      records.filter((r) => r.key === placed.orderId).map((r) => r.json.value.status);
    return statuses(await stack.readTopicUntil(topic, `its ${last} row`, (all) => statuses(all).at(-1) === last));
  };
  expect(await rows('stock.state', 'sold')).toEqual(['reserving', 'reserved', 'sold']);
  expect(await rows('billing.state', 'captured')).toEqual(['authorizing', 'authorized', 'captured']);

  // order.confirmed once more, twice: nothing changes, nothing is dead-lettered.
  const [confirmation] = (await stack.readTopic('order.confirmed')).filter((r) => r.key === placed.orderId);
  await stack.produce('order.confirmed', [confirmation!, confirmation!]);
  await sleep(2_000);
  expect(await get('billing', `/payments/${placed.orderId}`)).toMatchObject({ status: 'captured', amount: 200 });
  expect((await get('stock', '/stock/PEN')).sold).toBe(2);
  const deadLetters = (await stack.readTopic('order.confirmed.dlt')).filter((r) => r.key === placed.orderId);
  expect(deadLetters).toEqual([]);
});

test('the holds no saga settled are released and voided after the hold time, once, counted and logged', async () => {
  const pen = await eventually(
    'the ghost reservation to be released',
    async () => {
      const body = await get('stock', '/stock/PEN');
      return body.reserved === 0 ? body : undefined;
    },
    30_000,
  );
  expect(pen).toMatchObject({ initial: 100, available: 98, reserved: 0, sold: 2 });
  const voided = await get('billing', `/payments/${ghost.payment}`);
  expect(voided).toMatchObject({ status: 'voided', amount: 700 });
  expect(voided.reason).toMatch(/payment-authorization hold expired after 15000 ms/);
  expect(Date.parse(voided.at)).toBeGreaterThanOrEqual(heldSince + HOLD_MS);
  expect(await get('billing', '/accounts/alice')).toMatchObject({ held: 0, charged: 200, available: 99_800 });

  // Once: counted once each, and the rows stay released through further ticks.
  await sleep(3_000);
  expect(await metric('stock', 'ordersaga_holds_expired_total{hold="stock-reservation"}')).toBe(1);
  expect(await metric('billing', 'ordersaga_holds_expired_total{hold="payment-authorization"}')).toBe(1);
  expect((await get('stock', '/stock/PEN')).reserved).toBe(0);
  const rows = (await stack.readTopic('stock.state')).filter((r) => r.key === ghost.reservation);
  expect(rows.map((r) => r.json.value.status)).toEqual(['reserving', 'reserved', 'released']);
  // A log line names the order.
  for (const [service, orderId] of [
    ['stock', ghost.reservation],
    ['billing', ghost.payment],
  ] as const) {
    const line = stack
      .logTail(`${service}-0`, 500)
      .split('\n')
      .find((l) => l.includes('hold expired') && l.includes(orderId));
    expect(JSON.parse(line!)).toMatchObject({ orderId, level: 40 }); // pino's warn
  }
});

test('no notification for an order that has no saga: its events are dead letters with the reason', async () => {
  await foreign('order.confirmed', ghost.confirmed, { customerId: 'alice', lines: [], total: 100 });
  await foreign('order.failed', ghost.failed, { customerId: 'alice', step: 'reserveStock', reason: 'made up' });
  const dlt = async (topic: 'order.confirmed.dlt' | 'order.failed.dlt', orderId: string) =>
    eventually(`${topic} from notification for ${orderId}`, async () => {
      const records = (await stack.readTopic(topic)).filter(
        (r) => r.key === orderId && r.headers['dlt-group']?.endsWith('notification'),
      );
      return records.length > 0 ? records : undefined;
    });
  const [confirmed] = await dlt('order.confirmed.dlt', ghost.confirmed);
  expect(confirmed!.headers['dlt-reason']).toMatch(/it has no saga in order\.state: nobody is told/);
  const [failed] = await dlt('order.failed.dlt', ghost.failed);
  expect(failed!.headers['dlt-reason']).toMatch(/it has no saga/);
  for (const orderId of [ghost.confirmed, ghost.failed]) {
    expect((await stack.http('notification', `/notifications/${orderId}`)).status).toBe(404);
  }
  expect(
    await metric('notification', 'ordersaga_dead_letters_total{topic="order.confirmed",kind="handler-error"}'),
  ).toBe(1);
  // The real order was told, once, and the record says how Notification knows it ended.
  const told = ((await get('notification', '/notifications')) as any[]).filter((n) => !n.orderId.startsWith('ghost'));
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ outcome: 'confirmed', knownFrom: { topic: 'order.state', phase: 'CONFIRMED' } });
});
