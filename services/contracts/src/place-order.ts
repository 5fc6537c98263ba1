/**
 * The one way an order is placed, whichever door it comes in by: the Order API's POST, or a
 * SagaOrder applied with kubectl (the controller). Both give the same id for the same customer
 * and key, and start the saga with the same message. And the one way an order is cancelled, or
 * retried.
 */
import { initial, type Outgoing, type Payload, type Publisher } from '@ordersaga/runtime';
import type { OrderItem } from './messages.js';
import { orderIdFor, type SagaState } from './order-state.js';

export interface OrderRequest {
  readonly customerId: string;
  readonly items: readonly OrderItem[];
  /** The same key (per customer) stands for the same order: an HTTP Idempotency-Key, a SagaOrder's uid. */
  readonly idempotencyKey?: string;
  /** Without a key: the id the caller drew for the order (a new random one when not given). */
  readonly orderId?: string;
}

/**
 * Publishes the order.placed that starts the saga of a request (its order id: `orderIdFor` the
 * customer and key); resolves once Kafka has it.
 */
export async function placeOrder(
  publisher: Publisher,
  request: OrderRequest,
  now: Date,
  correlationId?: string,
): Promise<Outgoing<'order.placed'>> {
  const { customerId, items, idempotencyKey } = request;
  const placed = initial(
    'order.placed',
    idempotencyKey || request.orderId === undefined ? orderIdFor(customerId, idempotencyKey) : request.orderId,
    { customerId, items: [...items], ...(idempotencyKey ? { idempotencyKey } : {}) },
    now,
    correlationId,
  );
  await publisher.publish(placed);
  return placed;
}

/** Publishes a command to an order's saga, in its correlation; resolves once Kafka has it. */
async function commandSaga<T extends 'order.cancel' | 'order.retry'>(
  publisher: Publisher,
  saga: Pick<SagaState, 'orderId' | 'correlationId'>,
  type: T,
  payload: Payload<T>,
  now: Date,
): Promise<Outgoing<T>> {
  const command = initial(type, saga.orderId, payload, now, saga.correlationId);
  await publisher.publish(command);
  return command;
}

/**
 * Publishes the order.cancel of a saga that has not ended: its saga then compensates what it did
 * and ends FAILED, cancelled (a saga that ended meanwhile stays as it is).
 */
export function cancelOrder(
  publisher: Publisher,
  saga: Pick<SagaState, 'orderId' | 'correlationId'>,
  requestedBy: string,
  now: Date,
): Promise<Outgoing<'order.cancel'>> {
  return commandSaga(publisher, saga, 'order.cancel', { requestedBy }, now);
}

/**
 * Publishes the order.retry of a failed saga: its saga then runs again as a new attempt, once per
 * token (a saga that cannot be retried records the refusal).
 */
export function retryOrder(
  publisher: Publisher,
  saga: Pick<SagaState, 'orderId' | 'correlationId'>,
  token: string,
  requestedBy: string,
  now: Date,
): Promise<Outgoing<'order.retry'>> {
  return commandSaga(publisher, saga, 'order.retry', { token, requestedBy }, now);
}
