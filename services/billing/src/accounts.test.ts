import { StateTable } from '@ordersaga/runtime';
import { message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { createBillingHandler, Ledger, type Payment } from './accounts.js';

const later = now.getTime() + 60_000;
function setup() {
  const table = new StateTable<Payment>();
  const ledger = new Ledger({ alice: 1_000 }, table);
  const run = runner(createBillingHandler(ledger), table);
  return { ledger, run };
}

test('approves within credit, once', () => {
  const { ledger, run } = setup();
  const request = msg('payment.request', 'o1', { customerId: 'alice', amount: 600, expiresAt: later });
  expect(run(request).send?.[0]?.envelope.payload).toEqual({ result: 'approved', paymentId: 'pay-o1', amount: 600 });
  expect(run(request)).toEqual({});
  expect(ledger.account('alice')).toEqual({ customerId: 'alice', credit: 1_000, charged: 600, available: 400 });
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
  expect(ledger.account('alice')?.charged).toBe(0);
});

test('a cancel refunds a payment taken, and blocks one not yet requested', () => {
  const { ledger, run } = setup();
  run(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  run(msg('payment.cancel', 'o1', { reason: 'timed out' }));
  expect(ledger.account('alice')?.charged).toBe(0);

  run(msg('payment.cancel', 'o2', { reason: 'timed out' }));
  expect(run(msg('payment.request', 'o2', { customerId: 'alice', amount: 300, expiresAt: later }))).toEqual({});
  expect(ledger.account('alice')?.charged).toBe(0);
});
