import { createHash, randomUUID } from 'node:crypto';
import { MAX_ATTEMPT, type Cause, type Envelope } from '@ordersaga/runtime';
import type { OrderItem, PricedLine } from './messages.js';
import { PENDING } from './saga-definition.js';

/** Where a saga is: one of `ORDER_PHASES` (order-saga.ts), derived from the saga's steps. */
export type Phase = string;

export interface HistoryEntry {
  readonly at: string;
  readonly phase: Phase;
  readonly step: string | null;
  readonly event: string;
}

export interface Failure {
  readonly step: string;
  /** For people: what went wrong, with the figures. */
  readonly reason: string;
  /** For machines (metric labels, SagaOrder condition reasons): one of a small fixed set. */
  readonly kind: string;
  readonly timedOut: boolean;
}

/**
 * The durable state of one order's saga: a row of `order.state`, keyed by orderId. Written by
 * the orchestrator; read by the SagaOrder controller, which mirrors it into Kubernetes.
 */
export interface SagaState {
  readonly orderId: string;
  readonly customerId: string;
  readonly items: readonly OrderItem[];
  readonly idempotencyKey?: string;
  readonly correlationId: string;
  readonly traceId?: string;
  /** W3C traceparent of the span that last handled a message of the saga: a timeout continues there. */
  readonly traceparent?: string;
  /** The version of the saga's definition it started on, and runs on to its end (absent: 1). */
  readonly sagaVersion?: number;
  readonly phase: Phase;
  /** The step (or compensation) whose reply is awaited; null when nothing is. */
  readonly step: string | null;
  /** When the awaited reply times out (epoch ms); null when nothing is awaited. */
  readonly deadline: number | null;
  /** Forward steps that succeeded, in order: what a failure compensates, in reverse. */
  readonly completed: readonly string[];
  /** Compensations still to run, in order. */
  readonly compensations: readonly string[];
  readonly lines?: readonly PricedLine[];
  readonly total?: number;
  readonly paymentId?: string;
  readonly failure?: Failure;
  /** Which run of the saga this is: absent for the first, 2, 3... once retried (POST /orders/:id/retry). */
  readonly attempt?: number;
  /** The tokens of the retries asked for so far (the newest last): each is taken once. */
  readonly retryTokens?: readonly string[];
  readonly history: readonly HistoryEntry[];
  readonly placedAt: string;
  readonly updatedAt: string;
}

/** The run of the saga a message or a saga state belongs to: 1 for the first. */
export const attemptOf = (of: { readonly attempt?: number }): number => of.attempt ?? 1;

/**
 * The key of one run of an order's saga in a participant's state: the orderId for the first
 * run, `<orderId>@<attempt>` for a retry, so that each run reserves, charges and is told of anew.
 */
export function attemptKey(of: { readonly orderId: string; readonly attempt?: number }): string {
  const attempt = attemptOf(of);
  return attempt === 1 ? of.orderId : `${of.orderId}@${attempt}`;
}

/** The order and attempt an `attemptKey` names (an orderId never holds '@'). */
function fromAttemptKey(key: string): { orderId: string; attempt?: number } {
  const at = key.lastIndexOf('@');
  return at < 0 ? { orderId: key } : { orderId: key.slice(0, at), attempt: Number(key.slice(at + 1)) };
}

/** What a participant sends when the hold of the run `key` expires is caused by no message: this stands for one. */
export function expiryCause(key: string): Cause {
  const run = fromAttemptKey(key);
  return { id: `expired-${key}`, ...run, correlationId: run.orderId };
}

/**
 * The key of the run `attempt` of an order (a GET's `?attempt=`), or of its newest run, that
 * `has` a row for (a payment, a notification); undefined when there is none.
 */
export function runKeyOf(
  orderId: string,
  attempt: string | undefined,
  has: (key: string) => boolean,
): string | undefined {
  if (attempt !== undefined) {
    const key = attemptKey({ orderId, attempt: Number(attempt) });
    return has(key) ? key : undefined;
  }
  for (let run = MAX_ATTEMPT; run >= 1; run--) {
    const key = attemptKey({ orderId, attempt: run });
    if (has(key)) return key;
  }
  return undefined;
}

/**
 * The order id of a request: the same customer and Idempotency-Key always give the same id, on
 * any replica and without a lookup table (a UUID-shaped SHA-256 of the two); no key, a new id.
 */
export function orderIdFor(customerId: string, idempotencyKey: string | undefined): string {
  if (!idempotencyKey) return randomUUID();
  const hex = createHash('sha256').update(`${customerId}\u0000${idempotencyKey}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 3) | 8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A saga as its order.placed starts it, before its first step: what the orchestrator starts, and what the API shows meanwhile. */
export function newSaga(placed: Envelope<'order.placed'>, now: Date, traceId?: string): SagaState {
  const at = now.toISOString();
  const { customerId, items, idempotencyKey } = placed.payload;
  return {
    orderId: placed.orderId,
    customerId,
    items,
    ...(idempotencyKey ? { idempotencyKey } : {}),
    correlationId: placed.correlationId,
    ...(traceId ? { traceId } : {}),
    phase: PENDING,
    step: null,
    deadline: null,
    completed: [],
    compensations: [],
    history: [{ at, phase: PENDING, step: null, event: 'order placed' }],
    placedAt: placed.timestamp,
    updatedAt: at,
  };
}
