import { internalTopicsOf } from '@ordersaga/contracts';
import { StateTable, type AnyEnvelope } from '@ordersaga/runtime';
import { loopback, message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { createStockHandler, levels, reservationHold, type StockRow } from './inventory.js';

const HOLD_MS = 30_000;
const CATALOG = { INK: { quantity: 5, price: 250 }, PEN: { quantity: 1, price: 100 } };

/** The handler, its messages to the SKU owners and back delivered at once; what it sends the saga returned. */
function setup() {
  const table = new StateTable<StockRow>();
  const run = runner(createStockHandler(CATALOG, HOLD_MS), table);
  const handle = loopback(run, (topic) => internalTopicsOf('stock').includes(topic));
  const level = (sku: string) => levels((key) => table.get(key), CATALOG).find((l) => l.sku === sku);
  return { table, run, handle, level };
}

test('reserves and prices the items through each SKU, then sells them on confirmation', () => {
  const { handle, level } = setup();
  const [checked, ...rest] = handle(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 2 },
        { sku: 'PEN', quantity: 1 },
        { sku: 'INK', quantity: 1 },
      ],
    }),
  );
  expect(rest).toEqual([]);
  expect(checked).toMatchObject({ topic: 'stock.checked' });
  expect(checked!.envelope.payload).toEqual({
    result: 'reserved',
    lines: [
      { sku: 'INK', quantity: 2, unitPrice: 250 },
      { sku: 'PEN', quantity: 1, unitPrice: 100 },
      { sku: 'INK', quantity: 1, unitPrice: 250 },
    ],
    total: 850,
  });
  expect(level('INK')).toMatchObject({ available: 2, reserved: 3, sold: 0 });
  expect(handle(msg('order.confirmed', 'o1', { customerId: 'a', lines: [], total: 850 }))).toEqual([]);
  expect(level('INK')).toMatchObject({ available: 2, reserved: 0, sold: 3 });
  expect(level('PEN')).toMatchObject({ available: 0, reserved: 0, sold: 1 });
});

test('all or nothing: one SKU short releases what the others held, and says why', () => {
  const { handle, level } = setup();
  const [refused] = handle(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 2 },
        { sku: 'PEN', quantity: 2 },
      ],
    }),
  );
  expect(refused!.envelope.payload).toEqual({
    result: 'insufficient',
    reason: 'PEN: 2 requested, 1 available',
    missing: [{ sku: 'PEN', requested: 2, available: 1 }],
  });
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });
  expect(level('PEN')).toMatchObject({ available: 1, reserved: 0 });
});

test('the last unit goes to one order only', () => {
  const { handle, level } = setup();
  const answers = ['o1', 'o2', 'o3'].map(
    (o) => handle(msg('stock.check.request', o, { items: [{ sku: 'PEN', quantity: 1 }] }))[0]!.envelope.payload,
  );
  expect(answers.map((a: any) => a.result)).toEqual(['reserved', 'insufficient', 'insufficient']);
  expect(level('PEN')).toMatchObject({ available: 0, reserved: 1 });
});

test('a SKU not in the catalogue is named as unknown, not as out of stock', () => {
  const { handle, level } = setup();
  const [refused] = handle(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 6 },
        { sku: 'NOPE-1', quantity: 1 },
        { sku: 'NOPE-2', quantity: 1 },
      ],
    }),
  );
  expect(refused!.envelope.payload).toEqual({
    result: 'unknown-sku',
    reason: 'unknown SKU NOPE-1, NOPE-2',
    skus: ['NOPE-1', 'NOPE-2'],
  });
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });
  // Not even a prototype property passes for a SKU.
  const [odd] = handle(msg('stock.check.request', 'o2', { items: [{ sku: 'constructor', quantity: 1 }] }));
  expect(odd!.envelope.payload).toMatchObject({ result: 'unknown-sku' });
});

test('a reservation is a hold until heldUntil; expiring it gives the units back to their SKUs', () => {
  const { table, run, handle, level } = setup();
  const rules = reservationHold(HOLD_MS);
  handle(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 2 }] }));
  const reserved = table.get('o1')!;
  expect(rules.heldUntil(reserved)).toBe(now.getTime() + HOLD_MS);
  const later = new Date(now.getTime() + HOLD_MS);
  table.write('o1', rules.expire(reserved, 'hold expired', later), 0);
  const giveBack = rules.giveBack!('o1', reserved, 'hold expired', later);
  expect(giveBack.map((o) => [o.topic, o.key])).toEqual([['stock.sku.release', 'INK']]);
  for (const out of giveBack) run(out.envelope as AnyEnvelope);
  expect(table.get('o1')).toMatchObject({ status: 'released', reason: 'hold expired' });
  expect(rules.heldUntil(table.get('o1')!)).toBeUndefined();
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0, sold: 0 });
  // A release after the expiry changes nothing; a sale holds nothing.
  expect(handle(msg('stock.release', 'o1', { reason: 'x' }))).toEqual([]);
  handle(msg('stock.check.request', 'o2', { items: [{ sku: 'INK', quantity: 1 }] }));
  handle(msg('order.confirmed', 'o2', { customerId: 'a', lines: [], total: 250 }));
  expect(rules.heldUntil(table.get('o2')!)).toBeUndefined();
  expect(rules.settledBy).toEqual(['order.confirmed']);
});

test('duplicates change nothing; a release before its request blocks the late request', () => {
  const { handle, level } = setup();
  const request = msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 2 }] });
  handle(request);
  expect(handle(request)).toEqual([]);
  const release = msg('stock.release', 'o1', { reason: 'declined' });
  expect(handle(release).map((o) => o.envelope.payload)).toEqual([
    { released: [{ sku: 'INK', quantity: 2 }], reason: 'declined' },
  ]);
  expect(handle(release)).toEqual([]);
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });

  handle(msg('stock.release', 'o2', { reason: 'timed out' }));
  expect(handle(msg('stock.check.request', 'o2', { items: [{ sku: 'INK', quantity: 1 }] }))).toEqual([]);
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });
});

test('a release while the SKUs are still answering: the units held come back, the late answer changes nothing', () => {
  const { run, handle, level } = setup();
  // The request reaches the SKU's owner, which holds the units; its answer is still on its way.
  const requests = run(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 2 }] })).send!;
  const answers = requests.flatMap((r) => run(r.envelope as AnyEnvelope).send ?? []);
  expect(level('INK')).toMatchObject({ reserved: 2 });
  // The saga releases: the release follows the request to the owner (one key, one partition).
  const released = handle(msg('stock.release', 'o1', { reason: 'timed out' }));
  expect(released.map((o) => o.envelope.payload)).toEqual([{ released: [], reason: 'timed out' }]);
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });
  for (const answer of answers) expect(handle(answer.envelope as AnyEnvelope)).toEqual([]);
  expect(level('INK')).toMatchObject({ available: 5, reserved: 0 });
});

test('a restock adds units once per restock id', () => {
  const { handle, level } = setup();
  const restock = msg('stock.sku.restock', 'r1', { sku: 'PEN', quantity: 10, restockId: 'r1' });
  handle(restock);
  handle(restock);
  handle(msg('stock.sku.restock', 'r2', { sku: 'PEN', quantity: 5, restockId: 'r2' }));
  expect(level('PEN')).toMatchObject({ initial: 1, restocked: 15, available: 16 });
  expect(() => handle(msg('stock.sku.restock', 'r3', { sku: 'NOPE', quantity: 1, restockId: 'r3' }))).toThrow(
    /not in the catalogue/,
  );
});

test('releasing a sold order is refused loudly (it would create stock)', () => {
  const { handle } = setup();
  handle(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 1 }] }));
  handle(msg('order.confirmed', 'o1', { customerId: 'a', lines: [], total: 250 }));
  expect(() => handle(msg('stock.release', 'o1', { reason: 'x' }))).toThrow(/is sold/);
});
