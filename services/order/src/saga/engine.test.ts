import type { AnyEnvelope, Envelope, Payload, SagaState, SagaTopic } from '@ordersaga/runtime';
import { SagaEngine } from './engine.js';
import { orderSaga } from './order-saga.js';
import type { SagaState } from '@ordersaga/runtime';

const engine = new SagaEngine(orderSaga, { stepMs: 1_000, compensationMs: 2_000 });
const t0 = new Date('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

const placed: SagaState = {
  orderId: 'o-1',
  customerId: 'alice',
  items: [{ sku: 'KB-001', quantity: 2 }],
  correlationId: 'c-1',
  phase: 'PENDING',
  step: null,
  deadline: null,
  completed: [],
  compensations: [],
  history: [],
  placedAt: t0.toISOString(),
  updatedAt: t0.toISOString(),
};

function message<T extends SagaTopic>(type: T, payload: Payload<T>): AnyEnvelope {
  const envelope: Envelope<T> = {
    id: `m-${type}`,
    type,
    version: 1,
    orderId: 'o-1',
    correlationId: 'c-1',
    causationId: null,
    timestamp: t0.toISOString(),
    payload,
  };
  return envelope as AnyEnvelope;
}

const reserved = message('stock.checked', {
  result: 'reserved',
  lines: [{ sku: 'KB-001', quantity: 2, unitPrice: 500 }],
  total: 1_000,
});
const insufficient = message('stock.checked', {
  result: 'insufficient',
  reason: 'KB-001: 2 requested, 1 available',
  missing: [{ sku: 'KB-001', requested: 2, available: 1 }],
});
const approved = message('payment.result', { result: 'approved', paymentId: 'pay-1', amount: 1_000 });
const declined = message('payment.result', { result: 'declined', reason: 'insufficient credit' });
const released = message('stock.released', { released: [{ sku: 'KB-001', quantity: 2 }], reason: 'x' });

const types = (send: readonly { type: string }[]) => send.map((c) => c.type);

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

  test('a reply handled after its deadline is late: the step times out and is compensated', () => {
    const charging = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    // The approval was sent in time but handled after the deadline (say the orchestrator was down).
    const late = engine.onReply(charging.state, approved, at(1_011))!;
    expect(late.state).toMatchObject({
      phase: 'COMPENSATING',
      failure: { step: 'chargePayment', kind: 'timeout', timedOut: true },
    });
    expect(types(late.send)).toEqual(['payment.cancel', 'stock.release']);
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

  test('a payment timeout cancels the payment and releases the stock', () => {
    const charging = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    expect(engine.onTimeout(charging.state, at(500))).toBeNull();
    const compensating = engine.onTimeout(charging.state, at(1_010))!;
    expect(types(compensating.send)).toEqual(['payment.cancel', 'stock.release']);
    expect(compensating.state).toMatchObject({
      phase: 'COMPENSATING',
      step: 'releaseStock',
      failure: { step: 'chargePayment', kind: 'timeout', timedOut: true },
    });
    expect(compensating.state.failure?.reason).toMatch(/timed out/);
    // The late approval changes nothing: the cancel already on its way refunds it.
    expect(engine.onReply(compensating.state, approved, at(1_100))).toBeNull();
    const failed = engine.onReply(compensating.state, released, at(1_200))!;
    expect(failed.state.phase).toBe('FAILED');
  });

  test('a reservation timeout releases whatever may have been reserved late', () => {
    const started = engine.start(placed, at(0));
    const compensating = engine.onTimeout(started.state, at(1_000))!;
    expect(types(compensating.send)).toEqual(['stock.release']);
    expect(engine.onReply(compensating.state, reserved, at(1_100))).toBeNull();
  });

  test('a compensation that times out still ends the saga', () => {
    const compensating = engine.onTimeout(engine.start(placed, at(0)).state, at(1_000))!;
    const failed = engine.onTimeout(compensating.state, at(3_000))!;
    expect(failed.state.phase).toBe('FAILED');
    expect(types(failed.send)).toEqual(['order.failed']);
  });

  test('each transition describes its span: what the saga does next, what led there, the failure', () => {
    const started = engine.start(placed, at(0));
    expect(started.span).toEqual({
      name: 'saga orderSaga: reserveStock',
      attributes: {
        'ordersaga.saga.name': 'orderSaga',
        'ordersaga.saga.phase': 'RESERVING',
        'ordersaga.saga.step': 'reserveStock',
        'ordersaga.order_id': 'o-1',
      },
      events: ['reserveStock requested'],
    });
    const charging = engine.onReply(started.state, reserved, at(10))!;
    expect(charging.span.events).toEqual(['stock reserved', 'chargePayment requested']);
    const compensating = engine.onReply(charging.state, declined, at(20))!;
    expect(compensating.span).toMatchObject({
      name: 'saga orderSaga: releaseStock',
      events: ['chargePayment failed: payment declined: insufficient credit', 'releaseStock requested'],
      error: 'payment declined: insufficient credit',
    });
    const failed = engine.onReply(compensating.state, released, at(30))!;
    expect(failed.span).toMatchObject({
      name: 'saga orderSaga: failed',
      error: 'payment declined: insufficient credit',
    });
    expect(failed.span.attributes).not.toHaveProperty('ordersaga.saga.step');
  });

  test('the history keeps its last 50 events; the span gets all those of its transition', () => {
    const full = Array.from({ length: 50 }, (_, i) => ({
      at: t0.toISOString(),
      phase: 'PENDING' as const,
      step: null,
      event: `event ${i}`,
    }));
    const charging = engine.onReply(engine.start({ ...placed, history: full }, at(0)).state, reserved, at(10))!;
    expect(charging.state.history.map((h) => h.event)).toEqual([
      ...full.slice(3).map((h) => h.event),
      'reserveStock requested',
      'stock reserved',
      'chargePayment requested',
    ]);
    expect(charging.span.events).toEqual(['stock reserved', 'chargePayment requested']);
  });

  test('duplicate and stray replies change nothing', () => {
    const charging = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    expect(engine.onReply(charging.state, reserved, at(20))).toBeNull();
    expect(engine.onReply(charging.state, released, at(20))).toBeNull();
    const confirmed = engine.onReply(charging.state, approved, at(30))!;
    expect(engine.onReply(confirmed.state, approved, at(40))).toBeNull();
    expect(engine.onTimeout(confirmed.state, at(99_999))).toBeNull();
  });
});
