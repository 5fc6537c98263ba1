/**
 * Replicas share the work through consumer groups: two of every service, partitions split
 * between them, every saga completes and the invariants hold; each keeps the state of its own
 * partitions only, and answers the reads of its keys for the other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { ServiceName } from '@ordersaga/contracts';
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, SERVICES, Stack } from './support/stack.js';

const world: World = {
  catalog: { PAD: { quantity: 1_000, price: 300 } },
  accounts: { alice: 1_000_000, bob: 1_000_000 },
};
const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
    order: { STATE_CLEANUP_DELAY: '3s' },
  },
});

afterAll(() => stack.stopAll());

/** The partitions of the rows an instance's store holds for a table (opened read-only beside it). */
function storedPartitions(service: ServiceName, instance: string, table: string): Set<number> {
  const root = open({ path: stack.stateDir(service, instance), readOnly: true, maxDbs: 64 });
  try {
    const rows = root.openDB<{ partition: number }, string>({ name: `${table}:rows`, encoding: 'json' });
    return new Set([...rows.getRange()].map(({ value }) => value.partition));
  } finally {
    void root.close();
  }
}

const placeSome = (count: number, instance = '0') =>
  Promise.all(
    Array.from({ length: count }, (_, i) =>
      stack.placeOrder({ customerId: i % 2 ? 'alice' : 'bob', items: [{ sku: 'PAD', quantity: 1 }] }, {}, instance),
    ),
  );

test('two replicas of every service split the partitions, keep only their own, and answer for each other', async () => {
  await stack.startAll();
  const before = await placeSome(10);
  await Promise.all(before.map((p) => stack.finished(p.body.orderId)));
  await Promise.all(SERVICES.map((service) => stack.start(service, '1')));

  for (const service of SERVICES) {
    const split = await eventually(`${service} partitions split over two replicas`, async () => {
      const [a, b] = [stack.assigned(service, '0'), stack.assigned(service, '1')];
      return a.length > 0 && b.length > 0 && a.length + b.length === 6 ? [a, b] : undefined;
    });
    expect(new Set([...split[0]!, ...split[1]!]).size).toBe(6);
  }

  const placed = [...(await placeSome(15, '0')), ...(await placeSome(15, '1'))];
  expect(placed.every((p) => p.status === 202)).toBe(true);
  const { confirmed } = await expectInvariants(stack, world);
  expect(confirmed).toHaveLength(40);

  // Both orchestrator replicas did part of the work.
  for (const instance of ['0', '1']) {
    const metrics = (await fetch(`${stack.url('order', instance)}/metrics`).then((r) => r.text())) as string;
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('ordersaga_messages_consumed_total{topic="order.placed"}'));
    expect(Number(line?.split(' ')[1] ?? 0)).toBeGreaterThan(0);
  }

  // Each asks the other for what it does not keep: every order, payment and notification reads
  // the same through either replica, and the lists are whole.
  const orderIds = [...before, ...placed].map((p) => p.body.orderId as string);
  for (const instance of ['0', '1']) {
    for (const orderId of orderIds) {
      const order = await stack.http('order', `/orders/${orderId}`, undefined, instance);
      expect({ orderId, status: order.status, phase: order.body.status }).toEqual({
        orderId,
        status: 200,
        phase: 'CONFIRMED',
      });
      expect((await stack.http('billing', `/payments/${orderId}`, undefined, instance)).body.status).toBe('captured');
      expect((await stack.http('notification', `/notifications/${orderId}`, undefined, instance)).status).toBe(200);
    }
    const stock = await stack.http('stock', '/stock', undefined, instance);
    expect(stock.body).toEqual([expect.objectContaining({ sku: 'PAD', sold: 40, available: 960 })]);
    const accounts = await stack.http('billing', '/accounts', undefined, instance);
    expect(accounts.body.map((a: { customerId: string }) => a.customerId)).toEqual(['alice', 'bob']);
    const notifications = await stack.http('notification', '/notifications?limit=25', undefined, instance);
    expect(notifications.body).toHaveLength(25);
    expect(notifications.body.map((n: { orderId: string }) => n.orderId)).toEqual([...orderIds].sort().slice(0, 25));
  }
  // A keyed POST to the replica that does not keep the order is placed by the one that does: the
  // same key through either replica is the same order.
  const key = { 'idempotency-key': 'scaling-keyed' };
  const first = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PAD', quantity: 1 }] }, key, '1');
  const again = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PAD', quantity: 1 }] }, key, '0');
  expect([first.status, again.status]).toEqual([202, 200]);
  expect(again.body.orderId).toBe(first.body.orderId);

  // Only the owner keeps a partition: order-0 held all six before order-1 came; after
  // STATE_CLEANUP_DELAY its store holds the rows of its own partitions only, as order-1's does.
  await eventually(
    'order-0 to delete the rows of the partitions it gave up',
    async () =>
      (readFileSync(join(stack.logDir, 'order-0.log'), 'utf8').match(/deleted from the store/g)?.length ?? 0) >= 3 ||
      undefined,
  );
  for (const instance of ['0', '1']) {
    const mine = stack.assigned('order', instance);
    const stored = storedPartitions('order', instance, 'order.state');
    expect({ instance, stored: [...stored].sort() }).toEqual({
      instance,
      stored: [...stored].filter((p) => mine.includes(p)).sort(),
    });
    expect(stored.size).toBeGreaterThan(0);
  }
});

test('a replica that leaves hands its partitions over; sagas keep completing', async () => {
  await stack.stop('order', '1');
  await eventually('order-0 to own every partition', async () =>
    stack.assigned('order', '0').length === 6 ? true : undefined,
  );
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PAD', quantity: 2 }] });
  expect((await stack.finished(body.orderId)).status).toBe('CONFIRMED');
  await expectInvariants(stack, world);
});
