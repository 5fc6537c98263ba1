import { type SagaState } from '@ordersaga/contracts';
import { createLogger, StateTable } from '@ordersaga/runtime';
import { message as msg, NOW as now } from '../../../tests/support/handlers.js';
import { createNotificationHandler, type Notification } from './notifier.js';

function setup() {
  const sagas = new StateTable<SagaState>();
  const table = new StateTable<Notification>();
  const handle = createNotificationHandler({}, { post: async () => undefined }, sagas, createLogger('test'));
  const saga = (orderId: string, phase: SagaState['phase'], customerId = 'alice') =>
    sagas.write(
      orderId,
      {
        orderId,
        customerId,
        items: [{ sku: 'INK', quantity: 1 }],
        correlationId: 'c',
        phase,
        step: null,
        deadline: null,
        completed: [],
        compensations: [],
        history: [],
        placedAt: now.toISOString(),
        updatedAt: now.toISOString(),
      },
      0,
    );
  return { sagas, table, handle, saga };
}

const confirmed = (orderId: string, customerId = 'alice') =>
  msg('order.confirmed', orderId, { customerId, lines: [], total: 250 });

test('tells the customer of an order whose saga ended so, and says how it knows', () => {
  const { table, handle, saga } = setup();
  saga('o1', 'CONFIRMED');
  const decision = handle(confirmed('o1'), table, { now, lookupsCaughtUp: false });
  expect(decision.put?.[0]?.[1]).toMatchObject({
    orderId: 'o1',
    outcome: 'confirmed',
    message: 'Your order o1 is confirmed: 2.50 EUR.',
    knownFrom: { topic: 'order.state', phase: 'CONFIRMED', at: now.toISOString() },
  });
});

test('asks for the lookups to catch up before it decides that an order did not end so', () => {
  const { table, handle } = setup();
  expect(handle(confirmed('o1'), table, { now, lookupsCaughtUp: false })).toEqual({ awaitLookups: true });
});

test('refuses, with the reason, an event for an order with no saga, another outcome or another customer', () => {
  const { table, handle, saga } = setup();
  const caughtUp = { now, lookupsCaughtUp: true };
  expect(() => handle(confirmed('ghost'), table, caughtUp)).toThrow(/it has no saga in order\.state/);
  saga('o2', 'FAILED');
  expect(() => handle(confirmed('o2'), table, caughtUp)).toThrow(/its saga is FAILED/);
  saga('o3', 'CHARGING');
  expect(() => handle(confirmed('o3'), table, caughtUp)).toThrow(/its saga is CHARGING/);
  saga('o4', 'CONFIRMED', 'bob');
  expect(() => handle(confirmed('o4', 'alice'), table, caughtUp)).toThrow(/names alice, its saga bob/);
});
