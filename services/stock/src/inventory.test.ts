import { StateTable } from '@ordersaga/runtime';
import { message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { createStockHandler, Levels, reservationHold, type Reservation } from './inventory.js';

const HOLD_MS = 30_000;
function setup() {
  const table = new StateTable<Reservation>();
  const levels = new Levels({ INK: { quantity: 5, price: 250 } }, table);
  const run = runner(createStockHandler(levels, HOLD_MS), table);
  return { table, levels, run };
}

test('reserves and prices the items, then sells them on confirmation', () => {
  const { levels, run } = setup();
  const reserved = run(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 2 },
        { sku: 'INK', quantity: 1 },
      ],
    }),
  );
  expect(reserved.send?.[0]?.envelope.payload).toEqual({
    result: 'reserved',
    lines: [
      { sku: 'INK', quantity: 2, unitPrice: 250 },
      { sku: 'INK', quantity: 1, unitPrice: 250 },
    ],
    total: 750,
  });
  expect(levels.level('INK')).toMatchObject({ available: 2, reserved: 3, sold: 0 });
  run(msg('order.confirmed', 'o1', { customerId: 'a', lines: [], total: 750 }));
  expect(levels.level('INK')).toMatchObject({ available: 2, reserved: 0, sold: 3 });
});

test('insufficient items reserve nothing and say why', () => {
  const { levels, run } = setup();
  const refused = run(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 6 }] }));
  expect(refused.send?.[0]?.envelope.payload).toEqual({
    result: 'insufficient',
    reason: 'INK: 6 requested, 5 available',
    missing: [{ sku: 'INK', requested: 6, available: 5 }],
  });
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0 });
});

test('a SKU not in the catalogue is named as unknown, not as out of stock', () => {
  const { levels, run } = setup();
  const refused = run(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 6 },
        { sku: 'NOPE-1', quantity: 1 },
        { sku: 'NOPE-2', quantity: 1 },
      ],
    }),
  );
  expect(refused.send?.[0]?.envelope.payload).toEqual({
    result: 'unknown-sku',
    reason: 'unknown SKU NOPE-1, NOPE-2',
    skus: ['NOPE-1', 'NOPE-2'],
  });
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0 });
  // Not even a prototype property passes for a SKU.
  const odd = run(msg('stock.check.request', 'o2', { items: [{ sku: 'constructor', quantity: 1 }] }));
  expect(odd.send?.[0]?.envelope.payload).toMatchObject({ result: 'unknown-sku' });
});

test('a reservation is a hold until heldUntil; expiring it releases the units', () => {
  const { table, levels, run } = setup();
  const rules = reservationHold(HOLD_MS);
  run(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 2 }] }));
  const reserved = table.get('o1')!;
  expect(rules.heldUntil(reserved)).toBe(now.getTime() + HOLD_MS);
  table.write('o1', rules.expire(reserved, 'hold expired', new Date(now.getTime() + HOLD_MS)), 0);
  expect(table.get('o1')).toMatchObject({ status: 'released', reason: 'hold expired' });
  expect(rules.heldUntil(table.get('o1')!)).toBeUndefined();
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0, sold: 0 });
  // A release after the expiry changes nothing; a sale holds nothing.
  expect(run(msg('stock.release', 'o1', { reason: 'x' }))).toEqual({});
  run(msg('stock.check.request', 'o2', { items: [{ sku: 'INK', quantity: 1 }] }));
  run(msg('order.confirmed', 'o2', { customerId: 'a', lines: [], total: 250 }));
  expect(rules.heldUntil(table.get('o2')!)).toBeUndefined();
  expect(rules.settledBy).toEqual(['order.confirmed']);
});

test('duplicates change nothing; a release before its request blocks the late request', () => {
  const { levels, run } = setup();
  const request = msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 2 }] });
  run(request);
  expect(run(request)).toEqual({});
  const release = msg('stock.release', 'o1', { reason: 'declined' });
  expect(run(release).send?.[0]?.envelope.payload).toEqual({
    released: [{ sku: 'INK', quantity: 2 }],
    reason: 'declined',
  });
  expect(run(release)).toEqual({});
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0 });

  run(msg('stock.release', 'o2', { reason: 'timed out' }));
  expect(run(msg('stock.check.request', 'o2', { items: [{ sku: 'INK', quantity: 1 }] }))).toEqual({});
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0 });
});

test('releasing a sold order is refused loudly (it would create stock)', () => {
  const { run } = setup();
  run(msg('stock.check.request', 'o1', { items: [{ sku: 'INK', quantity: 1 }] }));
  run(msg('order.confirmed', 'o1', { customerId: 'a', lines: [], total: 250 }));
  expect(() => run(msg('stock.release', 'o1', { reason: 'x' }))).toThrow(/is sold/);
});
