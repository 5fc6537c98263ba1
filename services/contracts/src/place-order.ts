/**
 * The one way an order is placed, whichever door it comes in by: the Order API's POST, or a
 * SagaOrder applied with kubectl (the controller). Both give the same id for the same customer
 * and key, and start the saga with the same message. And the one way an order is cancelled, or
 * retried.
 */
import { initial, type Outgoing, type Publisher } from '@ordersaga/runtime';
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

/**
 * Publishes the order.cancel of a saga that has not ended, in its correlation: its saga then
 * compensates what it did and ends FAILED, cancelled (a saga that ended meanwhile stays as it is).
 */
export async function cancelOrder(
  publisher: Publisher,
  saga: Pick<SagaState, 'orderId' | 'correlationId'>,
  requestedBy: string,
  now: Date,
): Promise<Outgoing<'order.cancel'>> {
  const cancel = initial('order.cancel', saga.orderId, { requestedBy }, now, saga.correlationId);
  await publisher.publish(cancel);
  return cancel;
}

/**
 * Publishes the order.retry of a failed saga, in its correlation: its saga then runs again as a
 * new attempt, once per token (a saga that cannot be retried records the refusal).
 */
export async function retryOrder(
  publisher: Publisher,
  saga: Pick<SagaState, 'orderId' | 'correlationId'>,
  token: string,
  requestedBy: string,
  now: Date,
): Promise<Outgoing<'order.retry'>> {
  const retry = initial('order.retry', saga.orderId, { token, requestedBy }, now, saga.correlationId);
  await publisher.publish(retry);
  return retry;
}
