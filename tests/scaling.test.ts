/**
 * Replicas share the work through consumer groups: two of every service, partitions split
 * between them, every saga completes and the invariants hold.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  },
});

afterAll(() => stack.stopAll());

/** The partitions an instance was last assigned, from its log. */
function assigned(service: ServiceName, instance: string): number[] {
  const lines = readFileSync(join(stack.logDir, `${service}-${instance}.log`), 'utf8').split('\n');
  const last = lines
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return undefined;
      }
    })
    .filter((l) => l?.msg === 'partitions assigned')
    .pop();
  return last?.partitions ?? [];
}

test('two replicas of every service split the partitions and finish every saga', async () => {
  await stack.startAll();
  await Promise.all(SERVICES.map((service) => stack.start(service, '1')));

  for (const service of SERVICES) {
    const split = await eventually(`${service} partitions split over two replicas`, async () => {
      const [a, b] = [assigned(service, '0'), assigned(service, '1')];
      return a.length > 0 && b.length > 0 && a.length + b.length === 6 ? [a, b] : undefined;
    });
    expect(new Set([...split[0]!, ...split[1]!]).size).toBe(6);
  }

  const placed = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      stack.placeOrder({ customerId: i % 2 ? 'alice' : 'bob', items: [{ sku: 'PAD', quantity: 1 }] }),
    ),
  );
  expect(placed.every((p) => p.status === 202)).toBe(true);
  const { confirmed } = await expectInvariants(stack, world);
  expect(confirmed).toHaveLength(30);

  // Both orchestrator replicas did part of the work.
  for (const instance of ['0', '1']) {
    const metrics = (await fetch(`${stack.url('order', instance)}/metrics`).then((r) => r.text())) as string;
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('ordersaga_messages_consumed_total{topic="order.placed"}'));
    expect(Number(line?.split(' ')[1] ?? 0)).toBeGreaterThan(0);
  }
});

test('a replica that leaves hands its partitions over; sagas keep completing', async () => {
  await stack.stop('order', '1');
  await eventually('order-0 to own every partition', async () =>
    assigned('order', '0').length === 6 ? true : undefined,
  );
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PAD', quantity: 2 }] });
  expect((await stack.finished(body.orderId)).status).toBe('CONFIRMED');
  await expectInvariants(stack, world);
});
