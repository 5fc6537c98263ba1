/**
 * Binds the order saga to the runtime: Kafka messages and the clock in, state rows and
 * commands out. Saga state lives in `order.state`, committed with the commands it leads to.
 * Each transition is traced as the span the engine describes, in the order's trace: a timeout
 * continues it from the span of the last message the saga handled (kept in its state).
 *
 * New sagas start on one version of the saga's definition; each saga runs to its end on the
 * version it started on, so every version is kept running (ORDER_SAGAS).
 */
import {
  isTerminal,
  newSaga,
  ORDER_SAGAS,
  sagaVersionOf,
  type SagaDefinition,
  type SagaState,
} from '@ordersaga/contracts';
import {
  reply,
  type AnyEnvelope,
  type Cause,
  type Decision,
  type Envelope,
  type Handler,
  type HandlerContext,
  type RowLifecycle,
  type StateTable,
  type StateView,
  type Tick,
  type TickDecision,
} from '@ordersaga/runtime';
import { SagaEngine, type SagaTimeouts, type Transition } from './saga/engine.js';

/** The commands of a transition are caused by what led to it, and belong to the saga's attempt. */
function toDecision(transition: Transition, cause: Cause, now: Date, traceparent?: string): Decision<SagaState> {
  const state = traceparent ? { ...transition.state, traceparent } : transition.state;
  const ofAttempt = { ...cause, attempt: state.attempt };
  return {
    put: [[state.orderId, state]],
    send: transition.send.map((c) => reply(ofAttempt, c.type, c.payload, now)),
    span: transition.span,
  };
}

/** A saga is in flight until it ends; it is retired the retention after it ended. */
export const sagaLifecycle: RowLifecycle<SagaState> = {
  inFlight: (saga) => !isTerminal(saga.phase),
  endedAt: (saga) => (isTerminal(saga.phase) ? Date.parse(saga.updatedAt) : undefined),
};

export interface Orchestrator {
  readonly handle: Handler<SagaState>;
  readonly tick: Tick<SagaState>;
}

export function createOrchestrator(
  table: StateTable<SagaState>,
  timeouts: SagaTimeouts,
  startOn: SagaDefinition,
  tickMs = 200,
): Orchestrator {
  const engines = new Map(ORDER_SAGAS.map((definition) => [definition.version, new SagaEngine(definition, timeouts)]));
  const engineOf = (saga: SagaState): SagaEngine => {
    const engine = engines.get(sagaVersionOf(saga));
    if (!engine) {
      throw new Error(
        `order ${saga.orderId} runs on saga version ${sagaVersionOf(saga)}, which this orchestrator does not have: ` +
          `run one that does (it has ${[...engines.keys()].join(', ')})`,
      );
    }
    return engine;
  };

  // Sagas that await a reply, with their deadline: what the clock has to watch.
  const deadlines = new Map<string, number>();
  table.onChange((orderId, _previous, saga) => {
    if (saga && !isTerminal(saga.phase) && saga.deadline !== null) deadlines.set(orderId, saga.deadline);
    else deadlines.delete(orderId);
  });

  const start = (placed: Envelope<'order.placed'>, context: HandlerContext): Transition => {
    const initial: SagaState = { ...newSaga(placed, context.now, context.traceId), sagaVersion: startOn.version };
    return engineOf(initial).start(initial, context.now);
  };

  const handle = (message: AnyEnvelope, state: StateView<SagaState>, context: HandlerContext): Decision<SagaState> => {
    const saga = state.get(message.orderId);
    if (message.type === 'order.placed') {
      // A placed order seen again (retry, replay, same Idempotency-Key) starts nothing new.
      return saga ? {} : toDecision(start(message, context), message, context.now, context.traceparent);
    }
    if (!saga) throw new Error(`${message.type} for order ${message.orderId}, which has no saga`);
    const engine = engineOf(saga);
    const transition =
      message.type === 'order.cancel'
        ? engine.onCancel(saga, message.payload.requestedBy, context.now)
        : message.type === 'order.retry'
          ? engine.onRetry(saga, message.payload.token, message.payload.requestedBy, context.now)
          : engine.onReply(saga, message, context.now);
    return transition ? toDecision(transition, message, context.now, context.traceparent) : {};
  };

  const tick: Tick<SagaState> = {
    everyMs: tickMs,
    run: (state, partitions, now) => {
      const decisions: Array<TickDecision<SagaState>> = [];
      for (const [orderId, deadline] of deadlines) {
        if (deadline > now.getTime()) continue;
        const row = table.row(orderId);
        const saga = state.get(orderId);
        if (!row || !saga || !partitions.has(row.partition)) continue;
        // A version this code does not have: its messages say so (dead letters); the clock leaves it be.
        const transition = engines.get(sagaVersionOf(saga))?.onTimeout(saga, now);
        if (!transition) continue;
        const cause = { id: `timeout:${saga.step}:${orderId}`, orderId, correlationId: saga.correlationId };
        decisions.push({ ...toDecision(transition, cause, now), traceparent: saga.traceparent });
      }
      return decisions;
    },
  };

  return { handle, tick };
}
