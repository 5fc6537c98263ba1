/**
 * The engine's rules, on a saga of these tests' own (not the order saga, so that changing the
 * order saga changes none of them): two steps, the first undone by a compensation that awaits its
 * reply, the second by one that does not.
 */
import { command, type SagaDefinition } from '@ordersaga/contracts';
import { SagaEngine } from './engine.js';
import {
  approved,
  at,
  declined,
  insufficient,
  placed,
  released,
  reserved,
  t0,
  types,
} from '../../../../tests/support/saga.js';

const testSaga: SagaDefinition = {
  name: 'testSaga',
  version: 1,
  steps: [
    {
      name: 'first',
      phase: 'RESERVING',
      invoke: (saga) => command('stock.check.request', { items: [...saga.items] }),
      reply: 'stock.checked',
      onReply: (_saga, reply) =>
        reply.type === 'stock.checked' && reply.payload.result === 'reserved'
          ? { ok: true, update: { total: reply.payload.total }, event: 'first done' }
          : { ok: false, kind: 'first_refused', reason: 'first refused' },
      failureKinds: ['first_refused'],
      compensation: {
        name: 'undoFirst',
        command: (_saga, reason) => command('stock.release', { reason }),
        awaitReply: 'stock.released',
      },
    },
    {
      name: 'second',
      phase: 'CHARGING',
      invoke: (saga, deadline) =>
        command('payment.request', { customerId: saga.customerId, amount: saga.total ?? 0, expiresAt: deadline }),
      reply: 'payment.result',
      onReply: (_saga, reply) =>
        reply.type === 'payment.result' && reply.payload.result === 'approved'
          ? { ok: true, update: {}, event: 'second done' }
          : { ok: false, kind: 'second_refused', reason: 'second refused' },
      failureKinds: ['second_refused'],
      retryableKinds: ['second_refused'],
      compensation: { name: 'undoSecond', command: (_saga, reason) => command('payment.cancel', { reason }) },
    },
  ],
  confirmed: (saga) => command('order.confirmed', { customerId: saga.customerId, lines: [], total: saga.total ?? 0 }),
  failed: (saga) =>
    command('order.failed', { customerId: saga.customerId, step: saga.failure!.step, reason: saga.failure!.reason }),
};

const engine = new SagaEngine(testSaga, { stepMs: 1_000, compensationMs: 2_000 });

describe('saga engine', () => {
  test('steps run in order, each awaiting its reply until its deadline, then the saga confirms', () => {
    const started = engine.start(placed, at(0));
    expect(started.state).toMatchObject({ phase: 'RESERVING', step: 'first', deadline: t0.getTime() + 1_000 });
    const second = engine.onReply(started.state, reserved, at(10))!;
    expect(second.state).toMatchObject({ phase: 'CHARGING', step: 'second', deadline: at(1_010).getTime() });
    expect(second.send).toEqual([
      { type: 'payment.request', payload: { customerId: 'alice', amount: 1_000, expiresAt: at(1_010).getTime() } },
    ]);
    const confirmed = engine.onReply(second.state, approved, at(20))!;
    expect(confirmed.state).toMatchObject({
      phase: 'CONFIRMED',
      step: null,
      deadline: null,
      completed: ['first', 'second'],
    });
    expect(types(confirmed.send)).toEqual(['order.confirmed']);
  });

  test('a step that fails by its reply did nothing: the earlier ones are compensated, newest first', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    const compensating = engine.onReply(second.state, declined, at(20))!;
    expect(compensating.state).toMatchObject({
      phase: 'COMPENSATING',
      step: 'undoFirst',
      failure: { step: 'second', kind: 'second_refused', timedOut: false },
    });
    expect(types(compensating.send)).toEqual(['stock.release']);
    const failed = engine.onReply(compensating.state, released, at(30))!;
    expect(failed.state).toMatchObject({ phase: 'FAILED', compensations: [] });
    expect(types(failed.send)).toEqual(['order.failed']);
  });

  test('a reply handled after its deadline is late: the step times out and is compensated', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    // The reply was sent in time but handled after the deadline (say the orchestrator was down).
    const late = engine.onReply(second.state, approved, at(1_011))!;
    expect(late.state).toMatchObject({
      phase: 'COMPENSATING',
      failure: { step: 'second', kind: 'timeout', timedOut: true },
    });
    expect(types(late.send)).toEqual(['payment.cancel', 'stock.release']);
  });

  test('a step that times out is compensated too (it may still take effect), then the earlier ones', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    expect(engine.onTimeout(second.state, at(500))).toBeNull();
    const compensating = engine.onTimeout(second.state, at(1_010))!;
    // undoSecond awaits nothing: sent at once, then undoFirst, which awaits its reply.
    expect(types(compensating.send)).toEqual(['payment.cancel', 'stock.release']);
    expect(compensating.state).toMatchObject({
      phase: 'COMPENSATING',
      step: 'undoFirst',
      failure: { step: 'second', kind: 'timeout', timedOut: true },
    });
    expect(compensating.state.failure?.reason).toBe('second timed out after 1000 ms waiting for payment.result');
    // The late reply changes nothing: the compensation already on its way undoes it.
    expect(engine.onReply(compensating.state, approved, at(1_100))).toBeNull();
    expect(engine.onReply(compensating.state, released, at(1_200))!.state.phase).toBe('FAILED');
  });

  test('a first step that times out is undone, whatever it may have done late', () => {
    const compensating = engine.onTimeout(engine.start(placed, at(0)).state, at(1_000))!;
    expect(types(compensating.send)).toEqual(['stock.release']);
    expect(engine.onReply(compensating.state, reserved, at(1_100))).toBeNull();
  });

  test('a compensation that times out still ends the saga', () => {
    const compensating = engine.onTimeout(engine.start(placed, at(0)).state, at(1_000))!;
    expect(engine.onTimeout(compensating.state, at(2_999))).toBeNull();
    const failed = engine.onTimeout(compensating.state, at(3_000))!;
    expect(failed.state.phase).toBe('FAILED');
    expect(types(failed.send)).toEqual(['order.failed']);
  });

  test('each transition describes its span: what the saga does next, what led there, the failure', () => {
    const started = engine.start(placed, at(0));
    expect(started.span).toEqual({
      name: 'saga testSaga: first',
      attributes: {
        'ordersaga.saga.name': 'testSaga',
        'ordersaga.saga.phase': 'RESERVING',
        'ordersaga.saga.step': 'first',
        'ordersaga.order_id': 'o-1',
      },
      events: ['first requested'],
    });
    const second = engine.onReply(started.state, reserved, at(10))!;
    expect(second.span.events).toEqual(['first done', 'second requested']);
    const compensating = engine.onReply(second.state, declined, at(20))!;
    expect(compensating.span).toMatchObject({
      name: 'saga testSaga: undoFirst',
      events: ['second failed: second refused', 'undoFirst requested'],
      error: 'second refused',
    });
    const failed = engine.onReply(compensating.state, released, at(30))!;
    expect(failed.span).toMatchObject({ name: 'saga testSaga: failed', error: 'second refused' });
    expect(failed.span.attributes).not.toHaveProperty('ordersaga.saga.step');
  });

  test('the history keeps its last 50 events; the span gets all those of its transition', () => {
    const full = Array.from({ length: 50 }, (_, i) => ({
      at: t0.toISOString(),
      phase: 'PENDING' as const,
      step: null,
      event: `event ${i}`,
    }));
    const second = engine.onReply(engine.start({ ...placed, history: full }, at(0)).state, reserved, at(10))!;
    expect(second.state.history.map((h) => h.event)).toEqual([
      ...full.slice(3).map((h) => h.event),
      'first requested',
      'first done',
      'second requested',
    ]);
    expect(second.span.events).toEqual(['first done', 'second requested']);
  });

  test('duplicate and stray replies change nothing', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    expect(engine.onReply(second.state, reserved, at(20))).toBeNull();
    expect(engine.onReply(second.state, released, at(20))).toBeNull();
    const confirmed = engine.onReply(second.state, approved, at(30))!;
    expect(engine.onReply(confirmed.state, approved, at(40))).toBeNull();
    expect(engine.onTimeout(confirmed.state, at(99_999))).toBeNull();
  });

  test('a cancel while a step is awaited undoes that step (it may still land) and the earlier ones, then fails cancelled', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    const cancelling = engine.onCancel(second.state, 'alice', at(20))!;
    expect(cancelling.state).toMatchObject({
      phase: 'COMPENSATING',
      step: 'undoFirst',
      failure: { step: 'second', reason: 'cancelled', kind: 'cancelled', timedOut: false },
    });
    expect(types(cancelling.send)).toEqual(['payment.cancel', 'stock.release']);
    expect(cancelling.state.history.map((h) => h.event)).toContain('cancel requested by alice');
    // The reply of the step cancelled comes late: nothing changes; the compensation's ends the saga.
    expect(engine.onReply(cancelling.state, approved, at(30))).toBeNull();
    const failed = engine.onReply(cancelling.state, released, at(40))!;
    expect(failed.state).toMatchObject({ phase: 'FAILED', failure: { reason: 'cancelled', kind: 'cancelled' } });
    expect(failed.send).toEqual([
      { type: 'order.failed', payload: { customerId: 'alice', step: 'second', reason: 'cancelled' } },
    ]);
  });

  test('a cancel of the first step undoes it; a second cancel, or one of an ended saga, changes nothing', () => {
    const first = engine.start(placed, at(0));
    const cancelling = engine.onCancel(first.state, 'operator', at(5))!;
    expect(types(cancelling.send)).toEqual(['stock.release']);
    expect(engine.onCancel(cancelling.state, 'operator', at(6))).toBeNull();
    const failed = engine.onReply(cancelling.state, released, at(7))!;
    expect(engine.onCancel(failed.state, 'operator', at(8))).toBeNull();
    const confirmed = engine.onReply(engine.onReply(first.state, reserved, at(10))!.state, approved, at(20))!;
    expect(engine.onCancel(confirmed.state, 'alice', at(30))).toBeNull();
  });

  test('a cancel while compensating lets the compensations run on, and the saga ends cancelled', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    const timedOut = engine.onTimeout(second.state, at(1_011))!;
    expect(timedOut.state.failure?.kind).toBe('timeout');
    const cancelled = engine.onCancel(timedOut.state, 'alice', at(1_100))!;
    expect(cancelled.send).toEqual([]);
    expect(cancelled.state).toMatchObject({ phase: 'COMPENSATING', step: 'undoFirst', failure: { kind: 'cancelled' } });
    const failed = engine.onReply(cancelled.state, released, at(1_200))!;
    expect(failed.state).toMatchObject({ phase: 'FAILED', failure: { reason: 'cancelled' } });
  });

  /** A saga declined at the second step, compensated, FAILED. */
  const declinedSaga = () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    return engine.onReply(engine.onReply(second.state, declined, at(20))!.state, released, at(30))!.state;
  };

  test('a retry runs a failed saga again from its first step, as its next attempt, its history kept', () => {
    const failed = declinedSaga();
    const retried = engine.onRetry(failed, 't1', 'alice', at(100))!;
    expect(retried.state).toMatchObject({
      phase: 'RESERVING',
      step: 'first',
      attempt: 2,
      retryTokens: ['t1'],
      completed: [],
      compensations: [],
      deadline: at(1_100).getTime(),
    });
    expect(retried.state.failure).toBeUndefined();
    expect(retried.state.total).toBeUndefined();
    expect(types(retried.send)).toEqual(['stock.check.request']);
    expect(retried.state.history.map((h) => h.event)).toEqual([
      ...failed.history.map((h) => h.event),
      'retry t1 requested by alice: attempt 2',
      'first requested',
    ]);
    expect(retried.span.attributes).toMatchObject({ 'ordersaga.saga.attempt': 2 });
    // Its replies are the second attempt's: the first's, late, change nothing.
    expect(engine.onReply(retried.state, reserved, at(110))).toBeNull();
    const second = engine.onReply(retried.state, { ...reserved, attempt: 2 }, at(110))!;
    const confirmed = engine.onReply(second.state, { ...approved, attempt: 2 }, at(120))!;
    expect(confirmed.state).toMatchObject({ phase: 'CONFIRMED', attempt: 2 });
  });

  test('a retry token is taken once; a retry the saga cannot take is recorded with why, and changes nothing else', () => {
    const retried = engine.onRetry(declinedSaga(), 't1', 'alice', at(100))!;
    expect(engine.onRetry(retried.state, 't1', 'alice', at(101))).toBeNull();
    // Running: not failed.
    const running = engine.onRetry(retried.state, 't2', 'alice', at(102))!;
    expect(running.send).toEqual([]);
    expect(running.state).toMatchObject({ phase: 'RESERVING', attempt: 2, retryTokens: ['t1', 't2'] });
    expect(running.state.history.at(-1)!.event).toBe(
      'retry t2 requested by alice: refused, order o-1 is reserving: only a failed order can be retried',
    );
    expect(engine.onRetry(running.state, 't2', 'alice', at(103))).toBeNull();
    // A failure no retry mends (the first step's kind is not retryable), and a cancel.
    const ended = engine.onReply(engine.start(placed, at(0)).state, insufficient, at(10))!.state;
    expect(ended.phase).toBe('FAILED');
    expect(engine.onRetry(ended, 't3', 'alice', at(30))!.state.history.at(-1)!.event).toMatch(
      /refused, order o-1 failed for good \(first_refused: first refused\)/,
    );
    const cancelled = engine.onReply(
      engine.onCancel(engine.start(placed, at(0)).state, 'alice', at(5))!.state,
      released,
      at(6),
    )!;
    expect(engine.onRetry(cancelled.state, 't4', 'alice', at(7))!.send).toEqual([]);
  });

  test('a saga timed out is retried; it is not run more than MAX_ATTEMPT times', () => {
    const second = engine.onReply(engine.start(placed, at(0)).state, reserved, at(10))!;
    const compensating = engine.onTimeout(second.state, at(1_011))!;
    const failed = engine.onReply(compensating.state, released, at(1_020))!.state;
    expect(failed.failure?.kind).toBe('timeout');
    expect(types(engine.onRetry(failed, 't1', 'bob', at(1_030))!.send)).toEqual(['stock.check.request']);
    const worn = engine.onRetry({ ...failed, attempt: 100 }, 't2', 'bob', at(1_030))!;
    expect(worn.send).toEqual([]);
    expect(worn.state.history.at(-1)!.event).toMatch(/has run 100 times, the most a saga may/);
  });
});
