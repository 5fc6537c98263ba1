/**
 * Three replicas each of Stock and Billing, 300 concurrent orders on 12 partitions for one SKU
 * with 50 units, from customers whose credit covers only some of their orders: no unit is sold
 * or held twice and no account goes below zero — at any sample of the services' levels while it
 * runs, and in every version the owners committed of the SKU's and the customers' rows — and
 * the invariants hold at the end. Then stock and credit are added through their owners (once per
 * Idempotency-Key, and once under a duplicated record), and the SKU's owner is SIGKILLed in the
 * middle of more orders: its keys move to another replica, and no reservation is lost or doubled.
 */
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, sleep, Stack, type TopicRecord } from './support/stack.js';

const UNITS = 50;
const ORDERS = 300;
const CUSTOMERS = Array.from({ length: 10 }, (_, i) => `c${i}`);
// Each order costs 100: between 5 and 14 orders' worth each, 95 in all: more than the units.
const world: World = {
  catalog: { LAST: { quantity: UNITS, price: 100 } },
  accounts: Object.fromEntries(CUSTOMERS.map((c, i) => [c, 100 * (5 + i)])),
};
const PARTITIONS = '12';
const stack = new Stack({
  env: {
    order: { TOPIC_PARTITIONS: PARTITIONS },
    stock: { TOPIC_PARTITIONS: PARTITIONS, STOCK_CATALOG: JSON.stringify(world.catalog) },
    billing: { TOPIC_PARTITIONS: PARTITIONS, BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
    notification: { TOPIC_PARTITIONS: PARTITIONS },
  },
});
afterAll(() => stack.stopAll());

const REPLICAS = ['0', '1', '2'];

/** Every committed version of the SKU's row, once the last one holds nothing (as HTTP showed). */
async function settledSkuRows() {
  const rowsOf = (records: TopicRecord[]) => records.filter((r) => r.key === 'sku:LAST');
  const records = await stack.readTopicUntil('stock.state', "the SKU's settled row", (all) => {
    const last = rowsOf(all).at(-1);
    return last !== undefined && last.json.value.held === 0;
  });
  return rowsOf(records);
}

test('300 concurrent orders, 3 Stock and 3 Billing replicas: never more sold than there is, never below zero', async () => {
  await stack.startAll();
  for (const service of ['stock', 'billing'] as const) {
    await Promise.all(REPLICAS.slice(1).map((i) => stack.start(service, i)));
    await eventually(`${service}'s 12 partitions split over three replicas`, async () =>
      REPLICAS.every((i) => stack.assigned(service, i).length === 4) ? true : undefined,
    );
  }

  // Sample every replica's view while the orders run.
  const samples = { stock: 0, accounts: 0 };
  const breaches: string[] = [];
  let running = true;
  const sampler = (async () => {
    while (running) {
      for (const i of REPLICAS) {
        const { body: level } = await stack.http('stock', '/stock/LAST', undefined, i);
        samples.stock++;
        if (level.reserved + level.sold > UNITS || level.available < 0)
          breaches.push(`stock-${i}: ${JSON.stringify(level)}`);
        const { body: accounts } = await stack.http('billing', '/accounts', undefined, i);
        samples.accounts++;
        for (const account of accounts as any[])
          if (account.available < 0) breaches.push(`billing-${i}: ${JSON.stringify(account)}`);
      }
      await sleep(20);
    }
  })();

  const started = Date.now();
  const placed = await Promise.all(
    Array.from({ length: ORDERS }, (_, n) =>
      stack.placeOrder({ customerId: CUSTOMERS[n % CUSTOMERS.length], items: [{ sku: 'LAST', quantity: 1 }] }),
    ),
  );
  expect(placed.filter((p) => p.status !== 202)).toEqual([]);
  const { confirmed, failed } = await expectInvariants(stack, world, 120_000);
  const seconds = (Date.now() - started) / 1000;
  running = false;
  await sampler;

  expect(breaches).toEqual([]);
  expect(samples.stock).toBeGreaterThan(30);
  expect(confirmed.length).toBeLessThanOrEqual(UNITS);
  expect(confirmed.length + failed.length).toBe(ORDERS);

  // Every version of the SKU's row its owner committed, in order: never more held and sold than
  // there is; the peak is all of it (the first 50 requests take every unit before any is released).
  const stockRows = await settledSkuRows();
  const peak = Math.max(...stockRows.map((r) => r.json.value.held + r.json.value.sold));
  expect(new Set(stockRows.map((r) => r.partition)).size).toBe(1); // one owner's partition
  expect(peak).toBe(UNITS);
  const final = stockRows.at(-1)!.json.value;
  expect(final).toMatchObject({ held: 0, sold: confirmed.length });

  // Every version of each customer's credit: never below zero, and charged exactly its confirmed orders.
  const creditRows = (await stack.readTopic('billing.state')).filter((r) => r.key?.startsWith('customer:'));
  for (const row of creditRows) {
    const { credit, toppedUp, charged, held } = row.json.value;
    expect({ key: row.key, belowZero: credit + toppedUp - charged - held < 0 }).toEqual({
      key: row.key,
      belowZero: false,
    });
  }
  console.log(
    `${ORDERS} orders in ${seconds.toFixed(1)} s with 3 Stock and 3 Billing replicas: ${confirmed.length} confirmed, ` +
      `${failed.length} failed; peak held + sold ${peak} of ${UNITS}; ${samples.stock} stock samples, ${breaches.length} breaches`,
  );
});

test("restocked and topped up once per key, then the SKU's owner SIGKILLed mid-run: its keys move, nothing lost or doubled", async () => {
  // Stock and credit added through their owners: the same Idempotency-Key adds once, whichever
  // replica is asked, and a duplicate of the record on the topic adds nothing either.
  const ops = { 'content-type': 'application/json', 'idempotency-key': 'restock-1' };
  for (const i of ['0', '1']) {
    const answer = await stack.http(
      'stock',
      '/stock/LAST/restock',
      { method: 'POST', headers: ops, body: JSON.stringify({ quantity: 40 }) },
      i,
    );
    expect(answer.status).toBe(202);
  }
  for (const customerId of CUSTOMERS) {
    const headers = { 'content-type': 'application/json', 'idempotency-key': `top-up-${customerId}` };
    for (const i of ['1', '2'])
      await stack.http(
        'billing',
        `/accounts/${customerId}/top-up`,
        { method: 'POST', headers, body: JSON.stringify({ amount: 500 }) },
        i,
      );
  }
  const restocks = await stack.readTopic('stock.sku.restock');
  await stack.produce(
    'stock.sku.restock',
    restocks.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
  );
  const level = await eventually('the restock', async () => {
    const { body } = await stack.http('stock', '/stock/LAST');
    return body.restocked > 0 ? body : undefined;
  });
  await sleep(2_000); // the duplicates, had they counted, would have by now
  const after = (await stack.http('stock', '/stock/LAST')).body;
  expect(after).toMatchObject({ restocked: 40, reserved: 0 });
  expect(after.available).toBe(UNITS + 40 - after.sold);
  expect(level.restocked).toBe(40);
  const account = await eventually('the top-ups', async () => {
    const { body } = await stack.http('billing', '/accounts/c0');
    return body.toppedUp > 0 ? body : undefined;
  });
  expect(account.toppedUp).toBe(500);

  // The replica that owns the SKU's partition dies in the middle of 120 orders for 40 units.
  const skuPartition = (await stack.readTopic('stock.state')).find((r) => r.key === 'sku:LAST')!.partition;
  const owner = REPLICAS.find((i) => stack.assigned('stock', i).includes(skuPartition))!;
  const orders = Promise.all(
    Array.from({ length: 120 }, (_, n) =>
      stack.placeOrder({ customerId: CUSTOMERS[n % CUSTOMERS.length], items: [{ sku: 'LAST', quantity: 1 }] }),
    ),
  );
  await sleep(300);
  await stack.stop('stock', owner, 'SIGKILL');
  expect((await orders).filter((p) => p.status !== 202)).toEqual([]);
  await eventually("the SKU's partition to have a new owner", async () =>
    REPLICAS.some((i) => i !== owner && stack.assigned('stock', i).includes(skuPartition)) ? true : undefined,
  );
  await stack.start('stock', owner);

  const restockedWorld: World = { ...world, catalog: { LAST: { quantity: UNITS, price: 100 } } };
  const { confirmed } = await expectInvariants(stack, restockedWorld, 120_000);
  const stockRows = await settledSkuRows();
  expect(Math.max(...stockRows.map((r) => r.json.value.held + r.json.value.sold))).toBeLessThanOrEqual(UNITS + 40);
  expect(stockRows.at(-1)!.json.value).toMatchObject({ held: 0, sold: confirmed.length, restocked: 40 });
  // Each order answered once by the SKU's owner: no reservation doubled across the takeover.
  const answers = (await stack.readTopic('stock.sku.reserved')).map((r) => r.key);
  expect(answers.length).toBe(new Set(answers).size);
});
