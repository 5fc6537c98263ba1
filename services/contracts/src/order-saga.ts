/**
 * The order saga, top to bottom.
 *
 *   order.placed
 *     (v2 only)
 *     0. verifyCustomer customer.check.request -> customer.checked (known | unknown)
 *                       nothing to compensate: it only asks
 *     1. reserveStock   stock.check.request -> stock.checked    (reserved | insufficient | unknown-sku)
 *                       compensation: stock.release, awaiting stock.released
 *     2. chargePayment  payment.request     -> payment.result   (approved | declined)
 *                       compensation: payment.cancel (voids the authorization)
 *   -> order.confirmed  (Stock sells what it reserved, Billing captures what it authorized:
 *                        until then both are holds, released after a hold time if no saga ends)
 *
 *   unknown customer (v2)   -> order.failed before anything is held
 *   insufficient stock      -> order.failed; no payment is ever requested
 *   a SKU not in catalogue  -> order.failed, "unknown SKU ..."; no payment is ever requested
 *   payment declined        -> stock.release, then order.failed once stock.released arrives
 *   a step times out        -> that step is compensated too (its effect may still land late),
 *                              then the earlier ones, then order.failed
 *   order.cancel            -> as a timeout, and order.failed says "cancelled" (the engine's rule)
 *
 *   order.retry of a FAILED order (out of stock, declined, timed out; not unknown SKU nor
 *   customer, nor cancelled) -> the saga runs again from its first step, as attempt 2, 3...: its
 *   failure undid every step before the one that failed.
 *
 * Versions: v1 reserves, then charges. v2 first asks Billing whether the customer exists, so an
 * order of an unknown customer holds no stock even for a moment, at the price of one more round
 * trip per order. New sagas start on the version `SAGA_VERSION` names (1 by default); a saga
 * ends on the version it started on, so both are kept (ORDER_SAGAS) while sagas of either run.
 */
import type { SagaState } from './order-state.js';
import {
  command,
  failureKindsOf,
  phasesOf,
  retryRefusal,
  sagaVersionOf,
  type SagaDefinition,
  type Step,
} from './saga-definition.js';

const verifyCustomer: Step = {
  name: 'verifyCustomer',
  phase: 'VERIFYING',
  invoke: (saga) => command('customer.check.request', { customerId: saga.customerId }),
  reply: 'customer.checked',
  onReply: (_saga, reply) => {
    if (reply.type !== 'customer.checked') throw new Error(`unexpected ${reply.type}`);
    const checked = reply.payload;
    return checked.result === 'known'
      ? { ok: true, update: {}, event: 'customer verified' }
      : { ok: false, kind: 'unknown_customer', reason: checked.reason };
  },
  failureKinds: ['unknown_customer'],
};

const reserveStock: Step = {
  name: 'reserveStock',
  phase: 'RESERVING',
  invoke: (saga) => command('stock.check.request', { items: [...saga.items] }),
  reply: 'stock.checked',
  onReply: (_saga, reply) => {
    if (reply.type !== 'stock.checked') throw new Error(`unexpected ${reply.type}`);
    const checked = reply.payload;
    switch (checked.result) {
      case 'reserved':
        return { ok: true, update: { lines: checked.lines, total: checked.total }, event: 'stock reserved' };
      case 'insufficient':
        return { ok: false, kind: 'out_of_stock', reason: `out of stock: ${checked.reason}` };
      case 'unknown-sku':
        return { ok: false, kind: 'unknown_sku', reason: checked.reason };
    }
  },
  failureKinds: ['out_of_stock', 'unknown_sku'],
  // Stock may come back (a restock); a SKU that is not in the catalogue will not.
  retryableKinds: ['out_of_stock'],
  compensation: {
    name: 'releaseStock',
    command: (_saga, reason) => command('stock.release', { reason }),
    awaitReply: 'stock.released',
  },
};

const chargePayment: Step = {
  name: 'chargePayment',
  phase: 'CHARGING',
  // Billing refuses the request once the saga has stopped waiting for it.
  invoke: (saga, deadline) =>
    command('payment.request', { customerId: saga.customerId, amount: saga.total ?? 0, expiresAt: deadline }),
  reply: 'payment.result',
  onReply: (_saga, reply) => {
    if (reply.type !== 'payment.result') throw new Error(`unexpected ${reply.type}`);
    const result = reply.payload;
    return result.result === 'approved'
      ? { ok: true, update: { paymentId: result.paymentId }, event: 'payment approved' }
      : { ok: false, kind: 'payment_declined', reason: `payment declined: ${result.reason}` };
  },
  failureKinds: ['payment_declined'],
  retryableKinds: ['payment_declined'],
  compensation: {
    name: 'cancelPayment',
    command: (_saga, reason) => command('payment.cancel', { reason }),
  },
};

export const orderSagaV1: SagaDefinition = {
  name: 'orderSaga',
  version: 1,
  steps: [reserveStock, chargePayment],

  confirmed: (saga) =>
    command('order.confirmed', { customerId: saga.customerId, lines: [...(saga.lines ?? [])], total: saga.total ?? 0 }),

  failed: (saga) =>
    command('order.failed', {
      customerId: saga.customerId,
      step: saga.failure?.step ?? 'unknown',
      reason: saga.failure?.reason ?? 'unknown',
    }),
};

export const orderSagaV2: SagaDefinition = {
  ...orderSagaV1,
  version: 2,
  steps: [verifyCustomer, ...orderSagaV1.steps],
};

/** Every version of the order saga the orchestrator runs, oldest first: a saga ends on the one it started on. */
export const ORDER_SAGAS: readonly SagaDefinition[] = [orderSagaV1, orderSagaV2];

/** The version new sagas start on unless SAGA_VERSION says otherwise. */
export const DEFAULT_ORDER_SAGA_VERSION = 1;

/** The definition of a version of the order saga; undefined for one this code does not have. */
export const orderSagaOf = (version: number): SagaDefinition | undefined =>
  ORDER_SAGAS.find((saga) => saga.version === version);

/** Why an order cannot be retried, or undefined when it can: by the rules of the version it runs on. */
export function orderRetryRefusal(saga: SagaState): string | undefined {
  const definition = orderSagaOf(sagaVersionOf(saga));
  if (!definition)
    return `order ${saga.orderId} runs on saga version ${sagaVersionOf(saga)}, which this code does not have`;
  return retryRefusal(definition, saga);
}

/** The phases of an order, from the steps of every version: PENDING, VERIFYING, RESERVING, CHARGING, COMPENSATING, CONFIRMED, FAILED. */
export const ORDER_PHASES = phasesOf(...ORDER_SAGAS);

/** Every failure kind an order can end with (metric labels, SagaOrder condition reasons). */
export const ORDER_FAILURE_KINDS = failureKindsOf(...ORDER_SAGAS);
