import type { SagaState } from '@ordersaga/contracts';
import { expired, ORDER_ID_LABEL, sameStatus, statusOf, wanted, type SagaOrder } from './sagaorder.js';

const saga: SagaState = {
  orderId: 'o-1',
  customerId: 'alice',
  items: [{ sku: 'KB', quantity: 2 }],
  correlationId: 'c-1',
  traceId: '0af7651916cd43dd8448eb211c80319c',
  phase: 'CHARGING',
  step: 'chargePayment',
  deadline: 1,
  completed: ['reserveStock'],
  compensations: [],
  total: 9_980,
  history: [{ at: '2026-01-01T00:00:00.000Z', phase: 'PENDING', step: null, event: 'order placed' }],
  placedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:01.000Z',
};
const now = new Date('2026-01-01T00:00:02.000Z');

test('status mirrors the saga, with conditions per API conventions', () => {
  const status = statusOf(saga, undefined, now);
  expect(status).toMatchObject({
    orderId: 'o-1',
    source: 'http',
    phase: 'Charging',
    currentStep: 'chargePayment',
    total: '99.80',
    correlationId: 'c-1',
    traceId: saga.traceId,
    history: [{ at: '2026-01-01T00:00:00.000Z', phase: 'Pending', event: 'order placed' }],
  });
  expect(status.conditions).toEqual([
    expect.objectContaining({ type: 'Ready', status: 'False', reason: 'SagaInProgress' }),
    expect.objectContaining({ type: 'Succeeded', status: 'Unknown', reason: 'Charging' }),
  ]);

  const failed = statusOf(
    {
      ...saga,
      phase: 'FAILED',
      step: null,
      failure: { step: 'chargePayment', reason: 'timed out', kind: 'timeout', timedOut: true },
    },
    { metadata: { generation: 3 }, status },
    new Date('2026-01-01T00:00:05.000Z'),
  );
  expect(failed).toMatchObject({
    phase: 'Failed',
    reason: 'timed out',
    completedAt: saga.updatedAt,
    observedGeneration: 3,
  });
  expect(failed.currentStep).toBeUndefined();
  const succeeded = failed.conditions!.find((c) => c.type === 'Succeeded')!;
  expect(succeeded).toMatchObject({ status: 'False', reason: 'StepTimedOut', observedGeneration: 3 });
  expect(succeeded.lastTransitionTime).toBe('2026-01-01T00:00:05.000Z');
});

test('a failed saga gives the kind of its failure as the condition reason', () => {
  const unknownSku = statusOf(
    {
      ...saga,
      phase: 'FAILED',
      step: null,
      failure: { step: 'reserveStock', reason: 'unknown SKU NOPE-1', kind: 'unknown_sku', timedOut: false },
    },
    undefined,
    now,
  );
  expect(unknownSku.reason).toBe('unknown SKU NOPE-1');
  expect(unknownSku.conditions!.find((c) => c.type === 'Succeeded')).toMatchObject({
    status: 'False',
    reason: 'UnknownSku',
    message: 'unknown SKU NOPE-1',
  });
  // Cancelled (DELETE /orders/:id): its own reason, whatever failure it was compensating.
  const cancelled = statusOf(
    {
      ...saga,
      phase: 'FAILED',
      step: null,
      failure: { step: 'chargePayment', reason: 'cancelled', kind: 'cancelled', timedOut: false },
    },
    undefined,
    now,
  );
  expect(cancelled.conditions!.find((c) => c.type === 'Succeeded')).toMatchObject({
    status: 'False',
    reason: 'Cancelled',
    message: 'cancelled',
  });
});

test('a condition keeps its transition time while its status stays', () => {
  const first = statusOf(saga, undefined, now);
  const order = { metadata: { labels: { [ORDER_ID_LABEL]: 'o-1' } }, status: first } as Pick<
    SagaOrder,
    'metadata' | 'status'
  >;
  const again = statusOf({ ...saga, history: [...saga.history] }, order, new Date('2026-01-01T00:09:00.000Z'));
  expect(again.conditions).toEqual(first.conditions);
  expect(sameStatus(first, again)).toBe(true);
});

test('objects applied by users are sourced "kubernetes"', () => {
  const applied = { metadata: { uid: 'u', labels: {} } } as Pick<SagaOrder, 'metadata' | 'status'>;
  expect(statusOf(saga, applied, now).source).toBe('kubernetes');
});

test('mirror modes and TTL', () => {
  expect(wanted(saga, 'all', 0)).toBe(true);
  expect(wanted(saga, 'failed', 0)).toBe(false);
  expect(wanted({ ...saga, phase: 'FAILED' }, 'failed', 0)).toBe(true);
  expect(wanted(saga, 'sampled', 100)).toBe(true);
  expect(wanted(saga, 'sampled', 0)).toBe(false);
  const sampled = Array.from({ length: 1_000 }, (_, i) => wanted({ ...saga, orderId: `order-${i}` }, 'sampled', 10));
  expect(sampled.filter(Boolean).length).toBeGreaterThan(50);
  expect(sampled.filter(Boolean).length).toBeLessThan(150);

  expect(expired(undefined, 1, now)).toBe(false);
  expect(expired('2026-01-01T00:00:00.000Z', 1, now)).toBe(true);
  expect(expired('2026-01-01T00:00:00.000Z', 10, now)).toBe(false);
});
