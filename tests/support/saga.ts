/**
 * For the saga unit tests (the engine's and the order saga's): a saga about to start, replies as
 * they arrive, and the clock.
 */
import type { SagaState } from '@ordersaga/contracts';
import type { AnyEnvelope, Envelope, Payload, SagaTopic } from '@ordersaga/runtime';

export const t0 = new Date('2026-01-01T00:00:00.000Z');
export const at = (ms: number) => new Date(t0.getTime() + ms);

export const placed: SagaState = {
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

export function message<T extends SagaTopic>(type: T, payload: Payload<T>): AnyEnvelope {
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

export const reserved = message('stock.checked', {
  result: 'reserved',
  lines: [{ sku: 'KB-001', quantity: 2, unitPrice: 500 }],
  total: 1_000,
});
export const insufficient = message('stock.checked', {
  result: 'insufficient',
  reason: 'KB-001: 2 requested, 1 available',
  missing: [{ sku: 'KB-001', requested: 2, available: 1 }],
});
export const approved = message('payment.result', { result: 'approved', paymentId: 'pay-1', amount: 1_000 });
export const declined = message('payment.result', { result: 'declined', reason: 'insufficient credit' });
export const released = message('stock.released', { released: [{ sku: 'KB-001', quantity: 2 }], reason: 'x' });

/** The topics of the commands a transition sends. */
export const types = (send: readonly { type: string }[]) => send.map((c) => c.type);
