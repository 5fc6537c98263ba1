import { StateTable } from '@ordersaga/runtime';
import { message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { createStockHandler, Levels, type Reservation } from './inventory.js';

function setup() {
  const table = new StateTable<Reservation>();
  const levels = new Levels({ INK: { quantity: 5, price: 250 } }, table);
  const run = runner(createStockHandler(levels), table);
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

test('insufficient or unknown items reserve nothing and say why', () => {
  const { levels, run } = setup();
  const refused = run(
    msg('stock.check.request', 'o1', {
      items: [
        { sku: 'INK', quantity: 6 },
        { sku: 'NOPE', quantity: 1 },
      ],
    }),
  );
  expect(refused.send?.[0]?.envelope.payload).toEqual({
    result: 'insufficient',
    reason: 'INK: 6 requested, 5 available; NOPE: 1 requested, 0 available',
    missing: [
      { sku: 'INK', requested: 6, available: 5 },
      { sku: 'NOPE', requested: 1, available: 0 },
    ],
  });
  expect(levels.level('INK')).toMatchObject({ available: 5, reserved: 0 });
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
