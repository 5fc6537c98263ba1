/**
 * A small interpreter for declarative sagas (in the manner of Eventuate Tram): a saga is a list
 * of steps, each a command with the reply that ends it and the compensation that undoes it
 * (declared in @ordersaga/contracts, saga-definition.ts). Everything here is pure:
 * (state, message or clock) -> (new state, commands to send).
 *
 * Rules:
 * - Steps run in order; each waits for its reply until its deadline.
 * - A step that fails by its reply did nothing: the steps completed before it are compensated,
 *   newest first.
 * - A step that times out may still take effect later: it is compensated too, then the others.
 * - A compensation may await a reply (bounded by its own deadline); when it times out the saga
 *   still ends, since the compensation command is durable in Kafka and will be applied.
 * - Replies that do not match what the saga awaits (duplicates, late replies after a timeout,
 *   replays) change nothing.
 * - A cancel stops a saga that has not ended as a timeout does: the step awaited may still take
 *   effect, so it is compensated too, then the others, and the saga ends FAILED, cancelled. A
 *   saga already compensating goes on doing so, and ends cancelled; one that ended stays as it is.
 * - A retry runs a FAILED saga again from its first step, as its next attempt (its failure undid
 *   every step before the one that failed); its history goes on. Each token is taken once; a
 *   retry the saga cannot take (`retryRefusal`) is recorded, and changes nothing else. Replies
 *   of an earlier attempt change nothing.
 * - A step's reply handled after the step's deadline is late, whenever it was sent: the step
 *   times out (and is compensated). So a saga confirms within its steps' timeouts of starting,
 *   which is what lets the participants release a hold no saga made final after a hold time.
 *
 * Each transition also describes the span it is in the order's trace, `saga <name>: <what the
 * saga does next>` (a step, a compensation, confirmed or failed), for the runtime to record: the
 * orchestrator's part of the trace, between the replies it gets and the commands it sends.
 */
import type { AnyEnvelope, WorkSpan } from '@ordersaga/runtime';
import {
  attemptOf,
  CANCELLED_KIND,
  COMPENSATING,
  CONFIRMED,
  FAILED,
  isTerminal,
  PENDING,
  retryRefusal,
  TIMEOUT_KIND,
  type Command,
  type Compensation,
  type SagaDefinition,
  type SagaState,
} from '@ordersaga/contracts';

export interface SagaTimeouts {
  readonly stepMs: number;
  readonly compensationMs: number;
}

export interface Transition {
  readonly state: SagaState;
  readonly send: readonly Command[];
  /** The transition's span: what the saga does next, the events that led there, and any failure. */
  readonly span: WorkSpan;
}

/** A transition in the making: its history not yet trimmed, its span not yet described. */
type Move = Omit<Transition, 'span'>;

const MAX_HISTORY = 50;
/** The retry tokens a saga remembers: far more than anybody sends again. */
const MAX_RETRY_TOKENS = 20;

export class SagaEngine {
  constructor(
    private readonly definition: SagaDefinition,
    private readonly timeouts: SagaTimeouts,
  ) {}

  /** A new saga: starts its first step. */
  start(initial: SagaState, now: Date): Transition {
    return this.toTransition(initial, this.runStep(0, initial, now, []));
  }

  /** A reply came in. Null when it is not the one awaited: the saga stays as it is. */
  onReply(saga: SagaState, reply: AnyEnvelope, now: Date): Transition | null {
    const move = this.moveOnReply(saga, reply, now);
    return move && this.toTransition(saga, move);
  }

  /** The awaited reply did not come in time. Null when the saga is not overdue. */
  onTimeout(saga: SagaState, now: Date): Transition | null {
    const move = this.moveOnTimeout(saga, now);
    return move && this.toTransition(saga, move);
  }

  /** The saga was asked to stop. Null when there is nothing to change: it ended, or it is already cancelled. */
  onCancel(saga: SagaState, requestedBy: string, now: Date): Transition | null {
    const move = this.moveOnCancel(saga, requestedBy, now);
    return move && this.toTransition(saga, move);
  }

  /**
   * A retry was asked for, named by `token`. Null when that token was taken already; a retry
   * the saga cannot take is recorded (with why) and changes nothing else.
   */
  onRetry(saga: SagaState, token: string, requestedBy: string, now: Date): Transition | null {
    if (saga.retryTokens?.includes(token)) return null;
    const retryTokens = [...(saga.retryTokens ?? []), token].slice(-MAX_RETRY_TOKENS);
    const refusal = retryRefusal(this.definition, saga);
    const asked = `retry ${token} requested by ${requestedBy}`;
    if (refusal)
      return this.toTransition(saga, {
        state: record({ ...saga, retryTokens }, now, `${asked}: refused, ${refusal}`),
        send: [],
      });
    const { failure: _mended, lines: _l, total: _t, paymentId: _p, ...rest } = saga;
    const attempt = attemptOf(saga) + 1;
    const again: SagaState = record(
      { ...rest, attempt, retryTokens, phase: PENDING, step: null, deadline: null, completed: [], compensations: [] },
      now,
      `${asked}: attempt ${attempt}`,
    );
    return this.toTransition(saga, this.runStep(0, again, now, []));
  }

  /** Trims the history, and describes the span from what the move changed since `before`. */
  private toTransition(before: SagaState, { state, send }: Move): Transition {
    const { name } = this.definition;
    const next = state.step ?? state.phase.toLowerCase();
    return {
      state: { ...state, history: state.history.slice(-MAX_HISTORY) },
      send,
      span: {
        name: `saga ${name}: ${next}`,
        attributes: {
          'ordersaga.saga.name': name,
          'ordersaga.saga.phase': state.phase,
          ...(state.step ? { 'ordersaga.saga.step': state.step } : {}),
          ...(state.attempt ? { 'ordersaga.saga.attempt': state.attempt } : {}),
          'ordersaga.order_id': state.orderId,
        },
        events: state.history.slice(before.history.length).map((entry) => entry.event),
        ...(state.failure ? { error: state.failure.reason } : {}),
      },
    };
  }

  private moveOnReply(saga: SagaState, reply: AnyEnvelope, now: Date): Move | null {
    if (isTerminal(saga.phase) || saga.step === null || attemptOf(reply) !== attemptOf(saga)) return null;

    if (saga.phase === COMPENSATING) {
      const compensation = this.compensation(saga.step);
      if (compensation?.awaitReply !== reply.type) return null;
      return this.compensate(record(saga, now, `${compensation.name} done`), now, []);
    }

    const index = this.definition.steps.findIndex((s) => s.name === saga.step);
    const step = this.definition.steps[index];
    if (!step || step.reply !== reply.type) return null;
    if (saga.deadline !== null && now.getTime() > saga.deadline) return this.moveOnTimeout(saga, now);
    const outcome = step.onReply(saga, reply);
    if (outcome.ok) {
      const done = record(
        { ...saga, ...outcome.update, completed: [...saga.completed, step.name] },
        now,
        outcome.event,
      );
      return this.runStep(index + 1, done, now, []);
    }
    const failed: SagaState = {
      ...record(saga, now, `${step.name} failed: ${outcome.reason}`),
      failure: { step: step.name, reason: outcome.reason, kind: outcome.kind, timedOut: false },
      compensations: this.compensationsOf([...saga.completed].reverse()),
    };
    return this.compensate(failed, now, []);
  }

  private moveOnTimeout(saga: SagaState, now: Date): Move | null {
    if (isTerminal(saga.phase) || saga.deadline === null || saga.deadline > now.getTime()) return null;

    if (saga.phase === COMPENSATING) {
      const event = `${saga.step} timed out; its command stays queued and will be applied`;
      return this.compensate(record(saga, now, event), now, []);
    }

    const step = this.definition.steps.find((s) => s.name === saga.step);
    if (!step) return null;
    const reason = `${step.name} timed out after ${this.timeouts.stepMs} ms waiting for ${step.reply}`;
    const failed: SagaState = {
      ...record(saga, now, reason),
      failure: { step: step.name, reason, kind: TIMEOUT_KIND, timedOut: true },
      // The timed-out step may still take effect, so it is undone first.
      compensations: this.compensationsOf([step.name, ...[...saga.completed].reverse()]),
    };
    return this.compensate(failed, now, []);
  }

  private moveOnCancel(saga: SagaState, requestedBy: string, now: Date): Move | null {
    if (isTerminal(saga.phase) || saga.failure?.kind === CANCELLED_KIND) return null;
    const requested = record(saga, now, `cancel requested by ${requestedBy}`);
    const failure = {
      step: saga.failure?.step ?? saga.step ?? 'none',
      reason: 'cancelled',
      kind: CANCELLED_KIND,
      timedOut: false,
    };
    // Compensating already: that goes on, and the saga ends cancelled rather than for its first failure.
    if (saga.phase === COMPENSATING) return { state: { ...requested, failure }, send: [] };
    const cancelled: SagaState = {
      ...requested,
      failure,
      // The step awaited may still take effect (its command is out), so it is undone first.
      compensations: this.compensationsOf([...(saga.step ? [saga.step] : []), ...[...saga.completed].reverse()]),
    };
    return this.compensate(cancelled, now, []);
  }

  private runStep(index: number, saga: SagaState, now: Date, sent: Command[]): Move {
    const step = this.definition.steps[index];
    if (!step) {
      const confirmed = record({ ...saga, phase: CONFIRMED, step: null, deadline: null }, now, 'order confirmed');
      return { state: confirmed, send: [...sent, this.definition.confirmed(confirmed)] };
    }
    const deadline = now.getTime() + this.timeouts.stepMs;
    const running = record({ ...saga, phase: step.phase, step: step.name, deadline }, now, `${step.name} requested`);
    return { state: running, send: [...sent, step.invoke(running, deadline)] };
  }

  /** Runs the remaining compensations until one awaits a reply, then ends the saga FAILED. */
  private compensate(saga: SagaState, now: Date, sent: Command[]): Move {
    const [next, ...rest] = saga.compensations;
    const compensation = next === undefined ? undefined : this.compensation(next);
    if (!compensation) {
      const failed = record(
        { ...saga, phase: FAILED, step: null, deadline: null, compensations: [] },
        now,
        'order failed',
      );
      return { state: failed, send: [...sent, this.definition.failed(failed)] };
    }
    const reason = saga.failure?.reason ?? 'saga failed';
    const commands = [...sent, compensation.command(saga, reason)];
    if (compensation.awaitReply) {
      const waiting = record(
        {
          ...saga,
          phase: COMPENSATING,
          step: compensation.name,
          deadline: now.getTime() + this.timeouts.compensationMs,
          compensations: rest,
        },
        now,
        `${compensation.name} requested`,
      );
      return { state: waiting, send: commands };
    }
    return this.compensate(record({ ...saga, compensations: rest }, now, `${compensation.name} sent`), now, commands);
  }

  private compensationsOf(stepNames: readonly string[]): string[] {
    return stepNames.flatMap((name) => {
      const compensation = this.definition.steps.find((s) => s.name === name)?.compensation;
      return compensation ? [compensation.name] : [];
    });
  }

  private compensation(name: string): Compensation | undefined {
    return this.definition.steps.find((s) => s.compensation?.name === name)?.compensation;
  }
}

/** Adds an event to the history (trimmed to MAX_HISTORY once the transition is complete). */
function record(saga: SagaState, now: Date, event: string): SagaState {
  const at = now.toISOString();
  const entry = { at, phase: saga.phase, step: saga.step, event };
  return { ...saga, updatedAt: at, history: [...saga.history, entry] };
}
