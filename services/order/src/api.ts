/**
 * The Order API: place an order (which starts its saga), follow it, cancel it while it runs,
 * retry it once it failed.
 * Bodies are validated against the same schemas the saga messages use.
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  attemptOf,
  cancelOrder,
  CustomerId,
  isTerminal,
  newSaga,
  ORDER_PHASES,
  orderIdFor,
  OrderItems,
  orderRetryRefusal,
  PENDING,
  placeOrder,
  PricedLine,
  retryOrder,
  RetryToken,
  sagaVersionOf,
  type OrderItem,
  type SagaState,
} from '@ordersaga/contracts';
import { randomUUID } from 'node:crypto';
import {
  conflict,
  forbidden,
  mayActFor,
  notFound,
  unavailable,
  type OwnerRouting,
  type Publisher,
  type StateTable,
} from '@ordersaga/runtime';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const PlaceOrderBody = Type.Object({ customerId: CustomerId, items: OrderItems }, { additionalProperties: false });
type PlaceOrderBody = Static<typeof PlaceOrderBody>;

const PlaceOrderHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'The same key (per customer) returns the same order' }),
  ),
  'x-correlation-id': Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' })),
  traceparent: Type.Optional(
    Type.String({
      pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$',
      description: 'W3C trace context of the caller: the order is traced in its trace',
    }),
  ),
});

/** The saga's phases, as its definition derives them from its steps. */
const Phase = Type.Union(ORDER_PHASES.map((phase) => Type.Literal(phase)));

const OrderView = Type.Object({
  orderId: Type.String(),
  customerId: Type.String(),
  items: OrderItems,
  status: Phase,
  step: Type.Union([Type.String(), Type.Null()]),
  attempt: Type.Integer({ minimum: 1, description: 'Which run of its saga: 1, then 2, 3... after retries' }),
  sagaVersion: Type.Optional(
    Type.Integer({ minimum: 1, description: 'The version of the saga it runs on, known once its saga started' }),
  ),
  total: Type.Optional(Type.Integer({ description: 'Total in cents, known once stock is reserved' })),
  lines: Type.Optional(Type.Array(PricedLine)),
  paymentId: Type.Optional(Type.String()),
  failureReason: Type.Optional(Type.String()),
  history: Type.Array(
    Type.Object({
      at: Type.String(),
      phase: Type.String(),
      step: Type.Union([Type.String(), Type.Null()]),
      event: Type.String(),
    }),
  ),
  correlationId: Type.String(),
  traceId: Type.Optional(Type.String()),
  placedAt: Type.String(),
  updatedAt: Type.String(),
});
type OrderView = Static<typeof OrderView>;

const RetryHeaders = Type.Object({
  'idempotency-key': Type.Optional({ ...RetryToken, description: 'The retry token (a new one when not given)' }),
});

const ErrorBody = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() });

/** An order's id in a path, and its routing: the replica that keeps its partition answers. */
const OrderIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const byOrderId = { ownerKey: (request: FastifyRequest) => (request.params as { id: string }).id };

/** What a command to an order's saga (cancel, retry) answers: the order as it is, or why not. */
const ORDER_COMMAND_RESPONSES = {
  202: OrderView,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

function view(saga: SagaState): OrderView {
  return {
    orderId: saga.orderId,
    customerId: saga.customerId,
    items: [...saga.items],
    status: saga.phase,
    step: saga.step,
    attempt: attemptOf(saga),
    ...(saga.phase !== PENDING || saga.sagaVersion ? { sagaVersion: sagaVersionOf(saga) } : {}),
    ...(saga.total !== undefined ? { total: saga.total } : {}),
    ...(saga.lines ? { lines: [...saga.lines] } : {}),
    ...(saga.paymentId ? { paymentId: saga.paymentId } : {}),
    ...(saga.failure ? { failureReason: saga.failure.reason } : {}),
    history: [...saga.history],
    correlationId: saga.correlationId,
    ...(saga.traceId ? { traceId: saga.traceId } : {}),
    placedAt: saga.placedAt,
    updatedAt: saga.updatedAt,
  };
}

/** What a read of an order retired after the retention is told. */
const retired = (orderId: string, at: number) =>
  `order ${orderId} was retired at ${new Date(at).toISOString()}: orders are kept for ORDER_RETENTION after they end`;

const sameOrder = (order: Pick<OrderView, 'customerId' | 'items'>, customerId: string, items: readonly OrderItem[]) =>
  order.customerId === customerId && JSON.stringify(order.items) === JSON.stringify(items);

export interface OrderApiOptions {
  readonly table: StateTable<SagaState>;
  readonly publisher: Publisher;
  /** Orders are read and placed on the replica that keeps their partition. */
  readonly routing: OwnerRouting;
  /** How long a POST with an Idempotency-Key waits for the saga to start before answering 503. */
  readonly startTimeoutMs: number;
}

export async function orderApi(
  app: FastifyInstance,
  { table, publisher, routing, startTimeoutMs }: OrderApiOptions,
): Promise<void> {
  // Orders accepted here whose saga may not be committed yet, so a GET right after the POST
  // works. Bounded: the oldest go first, long after their saga has taken over.
  const accepted = new Map<string, OrderView>();
  const ACCEPTED_MAX = 10_000;

  /**
   * An order without an Idempotency-Key gets a random id of a partition served here, so that the
   * replica that accepted it is the one its reads go to (and finds it in `accepted` at once).
   */
  const localOrderId = (): string => {
    for (let tries = 0; tries < 256; tries++) {
      const id = randomUUID();
      if (routing.servesKey(id)) return id;
    }
    return randomUUID(); // this replica serves no partition (more replicas than partitions)
  };

  const find = (orderId: string): OrderView | undefined => {
    const saga = table.getCommitted(orderId);
    return saga ? view(saga) : accepted.get(orderId);
  };

  app.post<{ Body: PlaceOrderBody; Headers: Static<typeof PlaceOrderHeaders> }>(
    '/orders',
    {
      // With a key, the order's id is known: placed (and its key checked) by its partition's owner.
      config: {
        ownerKey: (request) => {
          const { body, headers } = request as FastifyRequest<{
            Body: PlaceOrderBody;
            Headers: Static<typeof PlaceOrderHeaders>;
          }>;
          const key = headers['idempotency-key'];
          return key ? orderIdFor(body.customerId, key) : undefined;
        },
      },
      schema: {
        tags: ['orders'],
        summary: 'Place an order; its saga runs asynchronously',
        body: PlaceOrderBody,
        headers: PlaceOrderHeaders,
        response: {
          200: OrderView,
          202: OrderView,
          400: ErrorBody,
          401: ErrorBody,
          403: ErrorBody,
          409: ErrorBody,
          422: ErrorBody,
          429: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { customerId, items } = request.body;
      if (!mayActFor(request, customerId)) {
        return forbidden(reply, `this token orders for ${request.caller!.subject}, not for ${customerId}`);
      }
      const idempotencyKey = request.headers['idempotency-key'];
      const orderId = idempotencyKey ? orderIdFor(customerId, idempotencyKey) : localOrderId();
      const reused = () =>
        reply.code(422).send({
          statusCode: 422,
          error: 'Unprocessable Entity',
          message: 'Idempotency-Key was already used for a different order',
        });
      const existing = find(orderId);
      const retiredAt = table.retiredAt(orderId);
      if (!existing && retiredAt !== undefined) {
        return conflict(reply, `${retired(orderId, retiredAt)}: this Idempotency-Key stood for it; use a new one`);
      }
      if (existing) {
        if (!sameOrder(existing, customerId, items)) return reused();
        return reply.code(200).header('location', `/orders/${orderId}`).send(existing);
      }
      const now = new Date();
      let placed;
      try {
        placed = await placeOrder(publisher, { customerId, items, idempotencyKey, orderId }, now, request.id);
      } catch (err) {
        request.log.error({ err, orderId }, 'could not publish order.placed');
        return reply.code(503).send({
          statusCode: 503,
          error: 'Service Unavailable',
          message: 'Kafka is unavailable; retry with the same Idempotency-Key',
        });
      }
      if (idempotencyKey) {
        // Requests with the same key may race here, on this replica or another: each placed an
        // order.placed, and the saga started from the first in its partition. Only its body is
        // accepted; the others learn which order their key stands for.
        const saga = await table.whenCommitted(orderId, startTimeoutMs);
        if (!saga) {
          return unavailable(
            reply,
            `order ${orderId} is queued but its saga did not start within ${startTimeoutMs} ms; ` +
              'retry with the same Idempotency-Key to learn its state',
            1,
          );
        }
        const order = view(saga);
        if (!sameOrder(order, customerId, items)) return reused();
        request.log.info({ orderId }, 'order placed');
        return reply.code(202).header('location', `/orders/${orderId}`).send(order);
      }
      const pending = view(newSaga(placed.envelope, now));
      if (!table.getCommitted(orderId)) {
        if (accepted.size >= ACCEPTED_MAX) accepted.delete(accepted.keys().next().value!);
        accepted.set(orderId, pending);
        // Once its saga is committed, the saga answers (and its retirement, in time), not this.
        void table.whenCommitted(orderId, startTimeoutMs).then((saga) => saga && accepted.delete(orderId));
      }
      request.log.info({ orderId }, 'order placed');
      return reply.code(202).header('location', `/orders/${orderId}`).send(pending);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    {
      config: byOrderId,
      schema: {
        tags: ['orders'],
        summary: 'An order: its state, step history and failure reason',
        params: OrderIdParams,
        response: { 200: OrderView, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const order = find(request.params.id);
      if (!order) {
        const retiredAt = table.retiredAt(request.params.id);
        return notFound(
          reply,
          retiredAt === undefined ? `order ${request.params.id} not found` : retired(request.params.id, retiredAt),
        );
      }
      if (!mayActFor(request, order.customerId)) {
        return forbidden(reply, `order ${request.params.id} is not ${request.caller!.subject}'s`);
      }
      return order;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/orders/:id',
    {
      config: byOrderId,
      schema: {
        tags: ['orders'],
        summary: 'Cancel an order whose saga has not ended: what it did is compensated, and it ends FAILED, cancelled',
        description:
          'Answers 202 with the order as it is; its saga then compensates and fails (follow it with GET). ' +
          'An order that ended is not changed: 409. Cancelling twice is cancelling once.',
        params: OrderIdParams,
        response: ORDER_COMMAND_RESPONSES,
      },
    },
    async (request, reply) => {
      const orderId = request.params.id;
      const order = find(orderId);
      if (!order) {
        const retiredAt = table.retiredAt(orderId);
        if (retiredAt === undefined) return notFound(reply, `order ${orderId} not found`);
        return conflict(reply, `${retired(orderId, retiredAt)}: an ended order cannot be cancelled`);
      }
      if (!mayActFor(request, order.customerId))
        return forbidden(reply, `order ${orderId} is not ${request.caller!.subject}'s`);
      if (isTerminal(order.status)) {
        const why = order.failureReason ? ` (${order.failureReason})` : '';
        return conflict(
          reply,
          `order ${orderId} is ${order.status.toLowerCase()}${why}: an ended order cannot be cancelled`,
        );
      }
      // Accepted a moment ago: the cancel is for its saga, which is waited for.
      const saga = table.getCommitted(orderId) ?? (await table.whenCommitted(orderId, startTimeoutMs));
      if (!saga) {
        return unavailable(reply, `the saga of order ${orderId} did not start within ${startTimeoutMs} ms`, 1);
      }
      try {
        await cancelOrder(publisher, saga, request.caller?.subject ?? 'the Order API', new Date());
      } catch (err) {
        request.log.error({ err, orderId }, 'could not publish order.cancel');
        return unavailable(reply, 'Kafka is unavailable', 1);
      }
      request.log.info({ orderId }, 'order cancel requested');
      return reply.code(202).send(view(saga));
    },
  );
  app.post<{ Params: { id: string }; Headers: Static<typeof RetryHeaders> }>(
    '/orders/:id/retry',
    {
      config: byOrderId,
      schema: {
        tags: ['orders'],
        summary: 'Run a failed order again from its first step, as a new attempt of the same order',
        description:
          'Answers 202 with the order as it is; its saga then runs again (follow it with GET: `attempt` counts the runs). ' +
          'Only a failure a retry may mend is retried: out of stock (after a restock), payment declined (after a top-up), ' +
          'a step timed out; not an unknown SKU nor a cancel: 409 with why, as for an order that has not failed. ' +
          'The same Idempotency-Key asks for one retry, however often it is sent.',
        params: OrderIdParams,
        headers: RetryHeaders,
        response: ORDER_COMMAND_RESPONSES,
      },
    },
    async (request, reply) => {
      const orderId = request.params.id;
      const saga = table.getCommitted(orderId);
      if (!saga) {
        const retiredAt = table.retiredAt(orderId);
        if (retiredAt !== undefined) return conflict(reply, `${retired(orderId, retiredAt)}: it cannot be retried`);
        // Accepted a moment ago, its saga not started yet: it has not failed.
        if (accepted.has(orderId))
          return conflict(reply, `order ${orderId} is pending: only a failed order can be retried`);
        return notFound(reply, `order ${orderId} not found`);
      }
      if (!mayActFor(request, saga.customerId))
        return forbidden(reply, `order ${orderId} is not ${request.caller!.subject}'s`);
      const token = request.headers['idempotency-key'] ?? randomUUID();
      // This retry was taken already: the order as it is now.
      if (saga.retryTokens?.includes(token)) return reply.code(202).send(view(saga));
      const refusal = orderRetryRefusal(saga);
      if (refusal) return conflict(reply, refusal);
      try {
        await retryOrder(publisher, saga, token, request.caller?.subject ?? 'the Order API', new Date());
      } catch (err) {
        request.log.error({ err, orderId }, 'could not publish order.retry');
        return unavailable(reply, 'Kafka is unavailable; retry with the same Idempotency-Key', 1);
      }
      request.log.info({ orderId, token }, 'order retry requested');
      return reply.code(202).send(view(saga));
    },
  );
}
