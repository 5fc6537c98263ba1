/**
 * The order saga's own outcomes, as its definition says them (the engine's rules are tested on a
 * saga of their own, in engine.test.ts).
 */
import { SagaEngine } from './engine.js';
import { orderSagaV1 as orderSaga } from '@ordersaga/contracts';
import {
  approved,
  at,
  declined,
  insufficient,
  message,
  placed,
  released,
  reserved,
  t0,
  types,
} from '../../../../tests/support/saga.js';

const engine = new SagaEngine(orderSaga, { stepMs: 1_000, compensationMs: 2_000 });

describe('order saga', () => {
  test('happy path: reserve, charge, confirm', () => {
    const started = engine.start(placed, at(0));
    expect(started.state).toMatchObject({ phase: 'RESERVING', step: 'reserveStock', deadline: 1_000 + t0.getTime() });
    expect(types(started.send)).toEqual(['stock.check.request']);

    const charging = engine.onReply(started.state, reserved, at(10))!;
    expect(charging.state).toMatchObject({ phase: 'CHARGING', step: 'chargePayment', total: 1_000 });
    expect(charging.send).toEqual([
      { type: 'payment.request', payload: { customerId: 'alice', amount: 1_000, expiresAt: at(1_010).getTime() } },
    ]);

    const confirmed = engine.onReply(charging.state, approved, at(20))!;
    expect(confirmed.state).toMatchObject({ phase: 'CONFIRMED', step: null, deadline: null, paymentId: 'pay-1' });
    expect(types(confirmed.send)).toEqual(['order.confirmed']);
    expect(confirmed.state.history.map((h) => h.event)).toEqual([
      'reserveStock requested',
      'stock reserved',
      'chargePayment requested',
      'payment approved',
      'order confirmed',
    ]);
  });

  test('out of stock fails at once: nothing to compensate, no payment requested', () => {
    const started = engine.start(placed, at(0));
    const failed = engine.onReply(started.state, insufficient, at(10))!;
    expect(failed.state).toMatchObject({
      phase: 'FAILED',
      failure: { step: 'reserveStock', kind: 'out_of_stock', timedOut: false },
    });
    expect(failed.state.failure?.reason).toMatch(/out of stock/);
    expect(types(failed.send)).toEqual(['order.failed']);
  });

  test('a SKU not in the catalogue is its own failure, not a stock shortage', () => {
    const unknown = message('stock.checked', { result: 'unknown-sku', reason: 'unknown SKU NOPE-1', skus: ['NOPE-1'] });
    const failed = engine.onReply(engine.start(placed, at(0)).state, unknown, at(10))!;
    expect(failed.state).toMatchObject({
      phase: 'FAILED',
      failure: { step: 'reserveStock', kind: 'unknown_sku', reason: 'unknown SKU NOPE-1', timedOut: false },
    });
    expect(types(failed.send)).toEqual(['order.failed']);
  });

  test('declined payment releases the stock, then fails once the release is done', () => {
    const charging = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    const compensating = engine.onReply(charging.state, declined, at(20))!;
    expect(compensating.state).toMatchObject({ phase: 'COMPENSATING', step: 'releaseStock' });
    expect(types(compensating.send)).toEqual(['stock.release']);

    const failed = engine.onReply(compensating.state, released, at(30))!;
    expect(failed.state).toMatchObject({
      phase: 'FAILED',
      failure: { step: 'chargePayment', kind: 'payment_declined' },
    });
    expect(failed.state.failure?.reason).toMatch(/payment declined/);
    expect(types(failed.send)).toEqual(['order.failed']);
  });
});
