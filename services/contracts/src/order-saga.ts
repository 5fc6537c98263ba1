/**
 * The order saga, top to bottom.
 *
 *   order.placed
 *     1. reserveStock   stock.check.request -> stock.checked    (reserved | insufficient | unknown-sku)
 *                       compensation: stock.release, awaiting stock.released
 *     2. chargePayment  payment.request     -> payment.result   (approved | declined)
 *                       compensation: payment.cancel (voids the authorization)
 *   -> order.confirmed  (Stock sells what it reserved, Billing captures what it authorized:
 *                        until then both are holds, released after a hold time if no saga ends)
 *
 *   insufficient stock      -> order.failed; no payment is ever requested
 *   a SKU not in catalogue  -> order.failed, "unknown SKU ..."; no payment is ever requested
 *   payment declined        -> stock.release, then order.failed once stock.released arrives
 *   a step times out        -> that step is compensated too (its effect may still land late),
 *                              then the earlier ones, then order.failed
 *   order.cancel            -> as a timeout, and order.failed says "cancelled" (the engine's rule)
 *
 *   order.retry of a FAILED order (out of stock, declined, timed out; not unknown SKU nor
 *   cancelled) -> the saga runs again from its first step, as attempt 2, 3...: its failure undid
 *   every step before the one that failed.
 */
import { command, failureKindsOf, phasesOf, type SagaDefinition } from './saga-definition.js';

export const orderSaga: SagaDefinition = {
  name: 'orderSaga',
  steps: [
    {
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
    },
    {
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
    },
  ],

  confirmed: (saga) =>
    command('order.confirmed', { customerId: saga.customerId, lines: [...(saga.lines ?? [])], total: saga.total ?? 0 }),

  failed: (saga) =>
    command('order.failed', {
      customerId: saga.customerId,
      step: saga.failure?.step ?? 'unknown',
      reason: saga.failure?.reason ?? 'unknown',
    }),
};

/** The phases of an order, from the saga's steps: PENDING, RESERVING, CHARGING, COMPENSATING, CONFIRMED, FAILED. */
export const ORDER_PHASES = phasesOf(orderSaga);

/** Every failure kind an order can end with (metric labels, SagaOrder condition reasons). */
export const ORDER_FAILURE_KINDS = failureKindsOf(orderSaga);
