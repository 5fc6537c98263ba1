import { internalTopicsOf } from '@ordersaga/contracts';
import { StateTable } from '@ordersaga/runtime';
import { loopback, message as msg, NOW as now, runner } from '../../../tests/support/handlers.js';
import { accountOf, authorizationHold, createBillingHandler, creditOf, type BillingRow } from './accounts.js';

const later = now.getTime() + 60_000;
const HOLD_MS = 30_000;
const SEEDS = { alice: 1_000 };

/** The handler, its messages to the customer's owner and back delivered at once; what it sends the saga returned. */
function setup() {
  const table = new StateTable<BillingRow>();
  const run = runner(createBillingHandler(SEEDS, HOLD_MS), table);
  const handle = loopback(run, (topic) => internalTopicsOf('billing').includes(topic));
  const account = (customerId: string) => accountOf(creditOf(customerId, (key) => table.get(key), SEEDS)!);
  return { table, run, handle, account };
}

test('authorizes within credit, once: a hold, captured only when the order is confirmed', () => {
  const { table, handle, account } = setup();
  const request = msg('payment.request', 'o1', { customerId: 'alice', amount: 600, expiresAt: later });
  expect(handle(request).map((o) => o.envelope.payload)).toEqual([
    { result: 'approved', paymentId: 'pay-o1', amount: 600 },
  ]);
  expect(handle(request)).toEqual([]);
  expect(table.get('o1')).toMatchObject({ status: 'authorized', heldUntil: now.getTime() + HOLD_MS });
  expect(account('alice')).toEqual({
    customerId: 'alice',
    credit: 1_000,
    toppedUp: 0,
    held: 600,
    charged: 0,
    available: 400,
  });

  const confirmed = msg('order.confirmed', 'o1', { customerId: 'alice', lines: [], total: 600 });
  handle(confirmed);
  expect(table.get('o1')).toMatchObject({ status: 'captured' });
  expect(table.get('o1')).not.toHaveProperty('heldUntil');
  expect(account('alice')).toMatchObject({ held: 0, charged: 600, available: 400 });
  // Confirmed twice: captured once.
  expect(handle(confirmed)).toEqual([]);
  expect(account('alice').charged).toBe(600);
});

test('declines beyond credit, unknown customers and expired requests', () => {
  const { handle, account } = setup();
  const reason = (orderId: string, customerId: string, amount: number, expiresAt = later) => {
    const payload = handle(msg('payment.request', orderId, { customerId, amount, expiresAt }))[0]?.envelope.payload;
    return payload && 'reason' in payload ? payload.reason : undefined;
  };
  expect(reason('o1', 'alice', 1_001)).toBe('insufficient credit: 1001 requested, 1000 available');
  expect(reason('o2', 'mallory', 1)).toBe('unknown customer mallory');
  expect(reason('o3', 'alice', 1, now.getTime() - 1)).toMatch(/expired/);
  expect(account('alice')).toMatchObject({ held: 0, charged: 0 });
});

test('the last euro goes to one order only', () => {
  const { handle, account } = setup();
  const results = ['o1', 'o2', 'o3'].map(
    (o) =>
      (
        handle(msg('payment.request', o, { customerId: 'alice', amount: 400, expiresAt: later }))[0]!.envelope
          .payload as any
      ).result,
  );
  expect(results).toEqual(['approved', 'approved', 'declined']);
  expect(account('alice')).toMatchObject({ held: 800, available: 200 });
});

test('a cancel voids an authorization (also one still being asked), and blocks one not yet requested', () => {
  const { table, run, handle, account } = setup();
  handle(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  handle(msg('payment.cancel', 'o1', { reason: 'timed out' }));
  expect(table.get('o1')).toMatchObject({ status: 'voided', reason: 'timed out' });
  expect(account('alice')).toMatchObject({ held: 0, charged: 0, available: 1_000 });

  handle(msg('payment.cancel', 'o2', { reason: 'timed out' }));
  expect(handle(msg('payment.request', 'o2', { customerId: 'alice', amount: 300, expiresAt: later }))).toEqual([]);
  expect(account('alice')).toMatchObject({ held: 0, charged: 0 });

  // The owner holds, its answer on its way; the cancel's void follows the request to the owner.
  const requests = run(msg('payment.request', 'o3', { customerId: 'alice', amount: 300, expiresAt: later })).send!;
  const answers = requests.flatMap((r) => run(r.envelope as never).send ?? []);
  expect(account('alice').held).toBe(300);
  handle(msg('payment.cancel', 'o3', { reason: 'timed out' }));
  expect(account('alice').held).toBe(0);
  for (const answer of answers) expect(handle(answer.envelope as never)).toEqual([]);
  expect(table.get('o3')).toMatchObject({ status: 'voided' });
});

test('a captured payment is final: cancelling it, or confirming a voided one, is refused loudly', () => {
  const { handle } = setup();
  handle(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  handle(msg('order.confirmed', 'o1', { customerId: 'alice', lines: [], total: 300 }));
  expect(() => handle(msg('payment.cancel', 'o1', { reason: 'x' }))).toThrow(/captured/);

  handle(msg('payment.request', 'o2', { customerId: 'alice', amount: 300, expiresAt: later }));
  handle(msg('payment.cancel', 'o2', { reason: 'timed out' }));
  expect(() => handle(msg('order.confirmed', 'o2', { customerId: 'alice', lines: [], total: 300 }))).toThrow(
    /payment is voided/,
  );
  expect(() => handle(msg('order.confirmed', 'o3', { customerId: 'alice', lines: [], total: 1 }))).toThrow(
    /not authorized/,
  );
});

test('the hold rules: an authorization holds until heldUntil; expiring it voids it and gives the credit back', () => {
  const { table, run, handle, account } = setup();
  const rules = authorizationHold(HOLD_MS);
  handle(msg('payment.request', 'o1', { customerId: 'alice', amount: 300, expiresAt: later }));
  const authorized = table.get('o1')!;
  expect(rules.heldUntil(authorized)).toBe(now.getTime() + HOLD_MS);
  const at = new Date(now.getTime() + HOLD_MS + 1);
  const voided = rules.expire(authorized, 'hold expired', at);
  expect(voided).toMatchObject({ status: 'voided', reason: 'hold expired', amount: 300 });
  expect(rules.heldUntil(voided)).toBeUndefined();
  const giveBack = rules.giveBack!('o1', authorized, 'hold expired', at);
  expect(giveBack.map((o) => [o.topic, o.key])).toEqual([['billing.credit.void', 'alice']]);
  for (const out of giveBack) run(out.envelope as never);
  expect(account('alice')).toMatchObject({ held: 0, available: 1_000 });
  expect(rules.settledBy).toEqual(['order.confirmed']);
});

test('a top-up adds credit once per top-up id', () => {
  const { handle, account } = setup();
  const topUp = msg('billing.credit.top-up', 't1', { customerId: 'alice', amount: 500, topUpId: 't1' });
  handle(topUp);
  handle(topUp);
  expect(account('alice')).toMatchObject({ toppedUp: 500, available: 1_500 });
  expect(() => handle(msg('billing.credit.top-up', 't2', { customerId: 'mallory', amount: 1, topUpId: 't2' }))).toThrow(
    /has no account/,
  );
});
