/**
 * The `ordersaga` command line against the real services and broker: dead letters listed, shown
 * and redriven (once; a redriven message that fails again dead-lettered again with both
 * reasons), orders read from their saga state, and clear errors.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { eventually, ROOT, Stack } from './support/stack.js';

const CATALOG = { MUG: { quantity: 10, price: 900 } };
const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify(CATALOG) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000 }) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

/** Runs `ordersaga <args>` (the bin npm links) as a user would, on this stack's namespace. */
function ordersaga(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'cli', 'bin', 'ordersaga.js'), ...args],
      { env: { PATH: process.env.PATH, KAFKA_BROKERS: stack.brokers, ORDERSAGA_NAMESPACE: stack.namespace } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const listJson = async (...filters: string[]) => {
  const { code, stdout, stderr } = await ordersaga('dlt', 'list', '--json', ...filters);
  if (code !== 0) throw new Error(`dlt list failed (${code}): ${stderr}`);
  return JSON.parse(stdout) as { count: number; deadLetters: any[] };
};

/** A restock written by another system straight to the SKU owner's topic (the API refuses an unknown SKU). */
async function foreignRestock(sku: string, quantity: number) {
  const restockId = `warehouse-${randomUUID()}`;
  const envelope = {
    id: randomUUID(),
    type: 'stock.sku.restock',
    version: 1,
    orderId: restockId,
    correlationId: restockId,
    causationId: null,
    timestamp: new Date().toISOString(),
    payload: { sku, quantity, restockId },
  };
  await stack.produce('stock.sku.restock', [{ key: sku, value: JSON.stringify(envelope) }]);
}

test('a restock for a SKU the catalogue lacked: listed, shown, redriven after the fix, counted once', async () => {
  await foreignRestock('LAMP', 5);
  const listed = await eventually('the restock in stock.sku.restock.dlt', async () => {
    const list = await listJson('--topic', 'stock.sku.restock');
    return list.count === 1 ? list.deadLetters[0] : undefined;
  });
  expect(listed).toMatchObject({
    topic: 'stock.sku.restock',
    kind: 'handler-error',
    reason: 'restock of LAMP, which is not in the catalogue',
    key: 'LAMP',
    earlierReasons: [],
  });
  expect(listed.id).toMatch(/^stock\.sku\.restock\.dlt\/0\/\d+$/);

  // For people: a table and the counts; one dead letter in full.
  const table = await ordersaga('dlt', 'list', '--reason', 'catalogue');
  expect(table.stdout).toMatch(/^ID\s+KIND\s+REASON\s+KEY\s+AGE\s+REDRIVEN$/m);
  expect(table.stdout).toContain('1 dead letter (0 redriven): stock.sku.restock 1 (handler-error 1)');
  const shown = await ordersaga('dlt', 'show', listed.id);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain('reason: restock of LAMP, which is not in the catalogue');
  expect(shown.stdout).toContain('"sku":"LAMP"');

  // The fix: LAMP in the catalogue. Then the redrive, once.
  await stack.stop('stock');
  await stack.start('stock', '0', {
    STOCK_CATALOG: JSON.stringify({ ...CATALOG, LAMP: { quantity: 0, price: 4_000 } }),
  });
  const redriven = await ordersaga('dlt', 'redrive', listed.id);
  expect(redriven).toMatchObject({ code: 0, stdout: expect.stringContaining('1 redriven, 0 refused') });
  const level = await eventually('LAMP restocked', async () => {
    const { status, body } = await stack.http('stock', '/stock/LAMP');
    return status === 200 && body.restocked === 5 ? body : undefined;
  });
  expect(level).toMatchObject({ available: 5, restocked: 5 });

  const again = await ordersaga('dlt', 'redrive', listed.id);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/not redriven: stock\.sku\.restock\.dlt\/0\/\d+: already redriven at \d{4}-/);
  const after = await listJson('--topic', 'stock.sku.restock');
  expect(after.deadLetters).toEqual([expect.objectContaining({ id: listed.id, redrivenAt: expect.any(String) })]);
  // Still 5: the redrive put it back once.
  expect((await stack.http('stock', '/stock/LAMP')).body.restocked).toBe(5);
});

test('a redriven message that fails again goes back to the dead-letter topic with both reasons', async () => {
  await stack.produce('order.placed', [{ key: 'poison-cli', value: '{"not": json', headers: { 'x-origin': 'cli' } }]);
  const first = await eventually('the poison in order.placed.dlt', async () =>
    (await listJson('--topic', 'order.placed', '--kind', 'poison')).deadLetters.find((d) => d.key === 'poison-cli'),
  );
  expect(first.reason).toMatch(/^invalid JSON/);
  expect((await ordersaga('dlt', 'redrive', first.id)).code).toBe(0);
  const second = await eventually('the poison dead-lettered again', async () =>
    (await listJson('--topic', 'order.placed')).deadLetters.find((d) => d.key === 'poison-cli' && d.id !== first.id),
  );
  expect(second.earlierReasons).toEqual([first.reason]);
  expect(second.reason).toMatch(/^invalid JSON/);
  expect(second.headers).toMatchObject({ 'x-origin': 'cli', 'dlt-redriven-from': first.id });
  // Found by either reason; the table shows both.
  expect((await listJson('--reason', 'invalid JSON', '--topic', 'order.placed')).count).toBe(2);
  expect((await ordersaga('dlt', 'list', '--topic', 'order.placed')).stdout).toContain('(+1 earlier)');
});

test('orders get and list read the sagas; --json for programs', async () => {
  const confirmed = await stack.finished(
    (await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'MUG', quantity: 1 }] })).body.orderId,
  );
  const failed = await stack.finished(
    (await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'MUG', quantity: 99 }] })).body.orderId,
  );
  const got = await ordersaga('orders', 'get', confirmed.orderId, '--json');
  expect(JSON.parse(got.stdout)).toMatchObject({ orderId: confirmed.orderId, phase: 'CONFIRMED', total: 900 });
  const table = await ordersaga('orders', 'get', failed.orderId);
  expect(table.stdout).toMatch(/^ORDER\s+CUSTOMER\s+STATUS\s+STEP\s+TOTAL\s+REASON\s+VERSION\s+ATTEMPT\s+UPDATED$/m);
  expect(table.stdout).toContain('out of stock: MUG: 99 requested');
  // Saga version 1, first attempt.
  expect(table.stdout).toMatch(/available\s+1\s+1\s+\d{4}-\d\d-\d\dT/);
  expect(table.stdout).toContain('order failed');

  const listed = JSON.parse((await ordersaga('orders', 'list', '--status', 'confirmed', '--json')).stdout);
  expect(listed.orders.map((o: { orderId: string }) => o.orderId)).toContain(confirmed.orderId);
  expect(listed.orders.map((o: { orderId: string }) => o.orderId)).not.toContain(failed.orderId);
  expect(await ordersaga('orders', 'get', 'nope')).toMatchObject({
    code: 1,
    stderr: 'ordersaga: no order nope (never placed, or retired)\n',
  });
});

test('a mistake in the command exits 2 with the usage; an unreachable broker is said once', async () => {
  const unknown = await ordersaga('dlt', 'frob');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/^ordersaga: no command "dlt frob"\n\nusage: ordersaga/);
  expect((await ordersaga('dlt', 'redrive')).stderr).toContain('dlt redrive takes ids, or --all');
  expect((await ordersaga('dlt', 'list', '--topic', 'nope')).stderr).toContain('no topic nope: one of order.placed');
  expect((await ordersaga('dlt', 'show', 'x')).code).toBe(2);
  const down = await ordersaga('dlt', 'list', '--brokers', '127.0.0.1:1');
  expect(down).toMatchObject({ code: 1, stdout: '' });
  expect(down.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(/^ordersaga: cannot reach Kafka at 127\.0\.0\.1:1 \(KAFKA_BROKERS, --brokers\)/),
  ]);
});
