import { StateTable } from '@ordersaga/runtime';
import { message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { authorizationHold, createBillingHandler, Ledger, type Payment } from './accounts.js';

const later = now.getTime() + 60_000;
const HOLD_MS = 30_000;
function setup() {
  const table = new StateTable<Payment>();
  const ledger = new Ledger({ alice: 1_000 }, table);
  const run = runner(createBillingHandler(ledger, HOLD_MS), table);
  return { table, ledger, run };
}

test('authorizes within credit, once: a hold, captured only when the order is confirmed', () => {
  const { table, ledger, run } = setup();
  const request = msg('payment.request', 'o1', { customerId: 'alice', amount: 600, expiresAt: later });
  expect(run(request).send?.[0]?.envelope.payload).toEqual({ result: 'approved', paymentId: 'pay-o1', amount: 600 });
  expect(run(request)).toEqual({});
  expect(table.get('o1')).toMatchObject({ status: 'authorized', heldUntil: now.getTime() + HOLD_MS });
  expect(ledger.account('alice')).toEqual({
    customerId: 'alice',
    credit: 1_000,
    held: 600,
    charged: 0,
    available: 400,
  });

  const confirmed = msg('order.confirmed', 'o1', { customerId: 'alice', lines: [], total: 600 });
  run(confirmed);
  expect(table.get('o1')).toMatchObject({ status: 'captured' });
  expect(table.get('o1')).not.toHaveProperty('heldUntil');
  expect(ledger.account('alice')).toEqual({
    customerId: 'alice',
    credit: 1_000,
    held: 0,
    charged: 600,
    available: 400,
  });
  // Confirmed twice: captured once.
  expect(run(confirmed)).toEqual({});
  expect(ledger.account('alice')?.charged).toBe(600);
});

test('declines beyond credit, unknown customers and expired requests', () => {
  const { ledger, run } = setup();
  const reason = (orderId: string, customerId: string, amount: number, expiresAt = later) => {
    const payload = run(msg('payment.request', orderId, { customerId, amount, expiresAt })).send?.[0]?.envelope.payload;
    return payload && 'reason' in payload ? payload.reason : undefined;
  };
  expect(reason('o1', 'alice', 1_001)).toBe('insufficient credit: 1001 requested, 1000 available');
  expect(reason('o2', 'mallory', 1)).toBe('unknown customer mallory');
  expect(reason('o3', 'alice', 1, now.getTime() - 1)).toMatch(/expired/);
  expect(ledger.account('alice')).toMatchObject({ held: 0, charged: 0 });
});

test('a cancel voids an authorization, and blocks one not yet requested', () => {
  const { table, ledger, run } = setup();
  run(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  run(msg('payment.cancel', 'o1', { reason: 'timed out' }));
  expect(table.get('o1')).toMatchObject({ status: 'voided', reason: 'timed out' });
  expect(ledger.account('alice')).toMatchObject({ held: 0, charged: 0, available: 1_000 });

  run(msg('payment.cancel', 'o2', { reason: 'timed out' }));
  expect(run(msg('payment.request', 'o2', { customerId: 'alice', amount: 300, expiresAt: later }))).toEqual({});
  expect(ledger.account('alice')).toMatchObject({ held: 0, charged: 0 });
});

test('a captured payment is final: cancelling it, or confirming a voided one, is refused loudly', () => {
  const { run } = setup();
  run(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  run(msg('order.confirmed', 'o1', { customerId: 'alice', lines: [], total: 300 }));
  expect(() => run(msg('payment.cancel', 'o1', { reason: 'x' }))).toThrow(/captured/);

  run(msg('payment.request', 'o2', { customerId: 'alice', amount: 300, expiresAt: later }));
  run(msg('payment.cancel', 'o2', { reason: 'timed out' }));
  expect(() => run(msg('order.confirmed', 'o2', { customerId: 'alice', lines: [], total: 300 }))).toThrow(
    /payment is voided/,
  );
  expect(() => run(msg('order.confirmed', 'o3', { customerId: 'alice', lines: [], total: 1 }))).toThrow(
    /not authorized/,
  );
});

test('the hold rules: an authorization holds until heldUntil, and expiring it voids it', () => {
  const { table, run } = setup();
  const rules = authorizationHold(HOLD_MS);
  run(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  const authorized = table.get('o1')!;
  expect(rules.heldUntil(authorized)).toBe(now.getTime() + HOLD_MS);
  const voided = rules.expire(authorized, 'hold expired', new Date(now.getTime() + HOLD_MS + 1));
  expect(voided).toMatchObject({ status: 'voided', reason: 'hold expired', amount: 300 });
  expect(rules.heldUntil(voided)).toBeUndefined();
  expect(rules.settledBy).toEqual(['order.confirmed']);
});
