/**
 * Kill the orchestrator (SIGKILL) while sagas are in flight, start it again: every saga ends
 * and the invariants hold.
 */
import { expectInvariants, type World } from './support/invariants.js';
import { sleep, Stack } from './support/stack.js';

const world: World = {
  catalog: { CUP: { quantity: 40, price: 800 }, TEA: { quantity: 25, price: 1_200 } },
  accounts: { alice: 30_000, bob: 6_000, carol: 1_000_000 },
};

const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

test('SIGKILL of the orchestrator mid-flight: every saga ends, invariants hold', async () => {
  const customers = Object.keys(world.accounts);
  const skus = Object.keys(world.catalog);
  const orderIds: string[] = [];
  // 60 orders: some confirmed, some out of stock, some declined; placed while the kill lands.
  const place = async (i: number) => {
    const body = {
      customerId: customers[i % customers.length],
      items: [{ sku: skus[i % skus.length], quantity: 1 + (i % 3) }],
    };
    const { status, body: order } = await stack.placeOrder(body);
    expect(status).toBe(202);
    orderIds.push(order.orderId);
  };
  await Promise.all(Array.from({ length: 40 }, (_, i) => place(i)));
  await sleep(30); // let some sagas get half-way

  expect(await stack.stop('order', '0', 'SIGKILL')).toBeNull();
  // Nothing ends while the orchestrator is dead: what has ended so far shows sagas were in flight.
  const ended = (await stack.readTopic('order.confirmed')).length + (await stack.readTopic('order.failed')).length;
  expect(ended).toBeLessThan(40);
  await stack.start('order');
  await Promise.all(Array.from({ length: 20 }, (_, i) => place(40 + i)));

  const { orders, confirmed, failed } = await expectInvariants(stack, world);
  expect(orders.map((o) => o.orderId).sort()).toEqual([...orderIds].sort());
  expect(confirmed.length).toBeGreaterThan(0);
  expect(failed.length).toBeGreaterThan(0);
});

test('SIGKILL of stock and billing mid-flight: every saga ends, invariants hold', async () => {
  for (let i = 0; i < 20; i++) {
    expect((await stack.placeOrder({ customerId: 'carol', items: [{ sku: 'CUP', quantity: 1 }] })).status).toBe(202);
  }
  await stack.stop('stock', '0', 'SIGKILL');
  await stack.stop('billing', '0', 'SIGKILL');
  await Promise.all([stack.start('stock'), stack.start('billing')]);
  await expectInvariants(stack, world);
});
