/**
 * Idempotent consumers: every message delivered twice, and every topic replayed from its start,
 * changes nothing twice.
 */
import { SAGA_TOPICS, topicsConsumedBy, type ServiceName } from '@ordersaga/contracts';
import { type SagaTopic } from '@ordersaga/runtime';
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, SERVICES, Stack } from './support/stack.js';

const world: World = {
  catalog: { PLATE: { quantity: 30, price: 1_000 }, BOWL: { quantity: 2, price: 700 } },
  accounts: { alice: 50_000, bob: 1_500 },
};
const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
  },
});
const sagaTopics = Object.keys(SAGA_TOPICS) as SagaTopic[];

beforeAll(async () => {
  await stack.startAll();
  const orders = [
    { customerId: 'alice', items: [{ sku: 'PLATE', quantity: 2 }] }, // confirmed
    { customerId: 'alice', items: [{ sku: 'BOWL', quantity: 5 }] }, // out of stock
    { customerId: 'bob', items: [{ sku: 'PLATE', quantity: 2 }] }, // declined, compensated
    { customerId: 'bob', items: [{ sku: 'BOWL', quantity: 1 }] }, // confirmed
  ];
  for (const order of orders) expect((await stack.placeOrder(order)).status).toBe(202);
  await expectInvariants(stack, world);
});
afterAll(() => stack.stopAll());

/** What the platform knows, as its users see it. */
async function snapshot() {
  const orderIds = [...new Set((await stack.readTopic('order.placed')).map((r) => r.key!))].sort();
  return {
    orders: await Promise.all(orderIds.map(async (id) => (await stack.http('order', `/orders/${id}`)).body)),
    stock: (await stack.http('stock', '/stock')).body,
    accounts: (await stack.http('billing', '/accounts')).body,
    payments: await Promise.all(orderIds.map(async (id) => (await stack.http('billing', `/payments/${id}`)).body)),
    notifications: ((await stack.http('notification', '/notifications')).body as any[]).sort((a, b) =>
      a.orderId.localeCompare(b.orderId),
    ),
  };
}

async function topicSizes(): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const topic of sagaTopics) sizes[topic] = (await stack.readTopic(topic)).length;
  return sizes;
}

/** Messages a service has consumed from a topic since it started (its own metric). */
async function consumed(service: ServiceName, topic: SagaTopic): Promise<number> {
  const { body } = await stack.http(service, '/metrics');
  const line = (body as string)
    .split('\n')
    .find((l) => l.startsWith(`ordersaga_messages_consumed_total{topic="${topic}"}`));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function waitConsumed(service: ServiceName, expected: Partial<Record<SagaTopic, number>>) {
  for (const [topic, count] of Object.entries(expected) as Array<[SagaTopic, number]>) {
    await eventually(`${service} to consume ${count} from ${topic}`, async () =>
      (await consumed(service, topic)) >= count ? true : undefined,
    );
  }
}

test('every message delivered twice changes nothing twice', async () => {
  const before = await snapshot();
  const sizes = await topicSizes();
  const consumedBefore: Record<string, number> = {};
  for (const service of SERVICES) {
    for (const topic of topicsConsumedBy(service))
      consumedBefore[`${service}/${topic}`] = await consumed(service, topic);
  }

  // Deliver every message of every saga topic a second time, headers and all.
  for (const topic of sagaTopics) {
    const records = await stack.readTopic(topic);
    if (records.length > 0) {
      await stack.produce(
        topic,
        records.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
      );
    }
  }
  for (const service of SERVICES) {
    const expected: Partial<Record<SagaTopic, number>> = {};
    for (const topic of topicsConsumedBy(service))
      expected[topic] = consumedBefore[`${service}/${topic}`]! + sizes[topic]!;
    await waitConsumed(service, expected);
  }

  expect(await snapshot()).toEqual(before);
  // No service produced anything in answer: each topic holds the originals and the copies only.
  const doubled = Object.fromEntries(Object.entries(sizes).map(([t, n]) => [t, 2 * n]));
  expect(await topicSizes()).toEqual(doubled);
});

test('replaying every topic from its start changes nothing', async () => {
  const before = await snapshot();
  const sizes = await topicSizes();
  const admin = stack.kafka.admin();
  await admin.connect();
  try {
    // Without committed offsets a group starts from the earliest offset: a full replay.
    for (const service of SERVICES) await stack.stop(service);
    await admin.deleteGroups(SERVICES.map((service) => `${stack.namespace}${service}`));
  } finally {
    await admin.disconnect();
  }
  await stack.startAll();
  for (const service of SERVICES) {
    const expected: Partial<Record<SagaTopic, number>> = {};
    for (const topic of topicsConsumedBy(service)) expected[topic] = sizes[topic]!;
    await waitConsumed(service, expected);
  }
  expect(await snapshot()).toEqual(before);
  expect(await topicSizes()).toEqual(sizes);
});
