/**
 * Idempotency-Key races: two clients POST with one key at the same moment, to two order
 * replicas. Exactly one order is accepted; a request with another body gets 422 and one with the
 * same body gets the same order, whatever the timing.
 */
import { eventually, sleep, Stack } from './support/stack.js';

const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 100_000, price: 100 } }) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000_000 }) },
  },
});

beforeAll(async () => {
  await stack.startAll();
  await stack.start('order', '1');
});
afterAll(() => stack.stopAll());

const ROUNDS = 50;
/** Pens sold by the orders the rounds accepted. */
let pensAccepted = 0;
const pens = (quantity: number) => ({ customerId: 'alice', items: [{ sku: 'PEN', quantity }] });

/** Two POSTs with one key, one to each order replica, the second `lagMs` after the first. */
async function race(key: string, bodies: [unknown, unknown], lagMs: number) {
  const headers = { 'idempotency-key': key };
  return Promise.all([
    stack.placeOrder(bodies[0], headers, '0'),
    sleep(lagMs).then(() => stack.placeOrder(bodies[1], headers, '1')),
  ]);
}

test(`${ROUNDS} rounds of two concurrent POSTs with one key and different bodies: one order, the other 422`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const bodies: [unknown, unknown] = [pens(1), pens(2)];
    const answers = await race(`different-${round}`, bodies, round % 5);
    const statuses = answers.map((a) => a.status).sort();
    expect({ round, statuses }).toEqual({ round, statuses: [202, 422] });
    const winner = answers.findIndex((a) => a.status === 202);
    const accepted = answers[winner]!.body;
    expect(accepted.items).toEqual((bodies[winner] as any).items);
    pensAccepted += accepted.items[0].quantity;
    expect(answers[1 - winner]!.body.message).toMatch(/Idempotency-Key was already used for a different order/);
    // The saga runs the body that was accepted, on either replica.
    const order = await stack.finished(accepted.orderId);
    expect(order).toMatchObject({ status: 'CONFIRMED', items: accepted.items });
    expect((await stack.http('order', `/orders/${accepted.orderId}`, undefined, '1')).body.items).toEqual(
      accepted.items,
    );
  }
});

test(`${ROUNDS} rounds of two concurrent POSTs with one key and the same body: the same order for both`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const answers = await race(`same-${round}`, [pens(3), pens(3)], round % 5);
    for (const answer of answers) expect([200, 202]).toContain(answer.status);
    expect(answers[0]!.body.orderId).toBe(answers[1]!.body.orderId);
    expect(answers[0]!.body.items).toEqual(pens(3).items);
    pensAccepted += 3;
  }
});

test('every key made one saga, whatever the number of order.placed records it wrote', async () => {
  const placed = await stack.readTopic('order.placed');
  const keys = new Set(placed.map((r) => r.key!));
  expect(keys.size).toBe(2 * ROUNDS);
  const started = await eventually('every saga to finish', async () => {
    const states = await stack.readTopic('order.state');
    const confirmed = new Set(states.filter((r) => r.json?.value?.phase === 'CONFIRMED').map((r) => r.key));
    return confirmed.size >= keys.size ? confirmed : undefined;
  });
  expect(started).toEqual(keys);
  // One reservation and one payment per key: the losing order.placed started nothing.
  const reservations = (await stack.readTopic('stock.checked')).map((r) => r.key);
  expect(reservations.length).toBe(keys.size);
  expect(new Set(reservations).size).toBe(keys.size);
  const pen = await eventually('every sale to be recorded', async () => {
    const { body } = await stack.http('stock', '/stock/PEN');
    return body.reserved === 0 ? body : undefined;
  });
  expect(pen.sold).toBe(pensAccepted);
});
