import { decode, encode, initial, PoisonMessageError, reply } from './envelope.js';

const now = new Date('2026-01-01T00:00:00.000Z');

test('a message survives encode/decode and its reply keeps the correlation', () => {
  const placed = initial(
    'order.placed',
    'o-1',
    { customerId: 'alice', items: [{ sku: 'A', quantity: 1 }] },
    now,
    'corr-1',
  );
  const decoded = decode('order.placed', encode(placed.envelope));
  expect(decoded).toEqual(placed.envelope);
  const next = reply(decoded, 'stock.check.request', { items: [{ sku: 'A', quantity: 1 }] }, now);
  expect(next.envelope).toMatchObject({
    orderId: 'o-1',
    correlationId: 'corr-1',
    causationId: placed.envelope.id,
    version: 1,
  });
  expect(next.envelope.id).not.toBe(placed.envelope.id);
});

test.each([
  ['bad JSON', Buffer.from('{nope'), /^invalid JSON/],
  ['a tombstone', null, /tombstone/],
  [
    'a wrong type',
    Buffer.from(
      JSON.stringify({ ...initial('order.failed', 'o', { customerId: 'a', step: 's', reason: 'r' }, now).envelope }),
    ),
    /schema violation: \/type/,
  ],
  ['a missing field', Buffer.from(JSON.stringify({ id: 'x', type: 'order.placed' })), /schema violation/],
])('%s is a poison message with a reason', (_name, value, reason) => {
  expect(() => decode('order.placed', value)).toThrow(PoisonMessageError);
  expect(() => decode('order.placed', value)).toThrow(reason);
});
