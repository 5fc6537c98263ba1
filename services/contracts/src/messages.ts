/**
 * Message schemas: the one source for what travels on each saga topic. The TypeScript types
 * are derived from the same schemas the consumers validate against (the runtime's envelope
 * carries them as its payload), and the Order API builds its HTTP schemas (and so its OpenAPI
 * document) from the same parts.
 */
import { randomUUID } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { SagaTopic } from './topics.js';

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' });

export const CustomerId = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9._-]+$',
  description: 'Customer account id',
});

export const Sku = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9._-]+$',
  description: 'Stock keeping unit',
});

export const OrderItem = Type.Object(
  { sku: Sku, quantity: Type.Integer({ minimum: 1, maximum: 10_000 }) },
  { additionalProperties: false },
);
export type OrderItem = Static<typeof OrderItem>;

export const OrderItems = Type.Array(OrderItem, { minItems: 1, maxItems: 100 });

/** Money is an integer number of cents: no floating point on the payment path. */
export const Cents = Type.Integer({ minimum: 0, description: 'Amount in cents' });

export const PricedLine = Type.Object(
  { sku: Sku, quantity: Type.Integer({ minimum: 1 }), unitPrice: Cents },
  { additionalProperties: false },
);
export type PricedLine = Static<typeof PricedLine>;

const Reason = Type.String({ minLength: 1, maxLength: 500 });

/** Headers of a command an operator sends an owner over HTTP (a restock, a top-up). */
export const CommandHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 100,
      pattern: '^[A-Za-z0-9._:-]+$',
      description: 'The command id: sent again, it counts once',
    }),
  ),
});

/** The id of such a command: its Idempotency-Key, or a new one. */
export const commandIdOf = (headers: Static<typeof CommandHeaders>): string =>
  headers['idempotency-key'] ?? randomUUID();

/** The query of a read of one run of an order (its payment, its notification): the newest run unless `attempt` says. */
export const AttemptQuery = Type.Object(
  {
    attempt: Type.Optional(
      Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: 'Which run of the order: 1 for the first' }),
    ),
  },
  { additionalProperties: false },
);

/** Names a retry of an order: the same token asks for one retry, however often it is sent. */
export const RetryToken = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Za-z0-9._:-]+$',
  description: 'Names a retry: the same token asks for one retry, however often it is sent',
});

/** Payload schema of each saga topic; the message type is the topic name. */
export const PAYLOADS = {
  'order.placed': Type.Object(
    { customerId: CustomerId, items: OrderItems, idempotencyKey: Type.Optional(Type.String({ maxLength: 200 })) },
    { additionalProperties: false },
  ),
  'order.cancel': Type.Object(
    { requestedBy: Type.String({ minLength: 1, maxLength: 200, description: 'Who asked: a customer, the operator' }) },
    { additionalProperties: false },
  ),
  'order.retry': Type.Object(
    {
      token: RetryToken,
      requestedBy: Type.String({ minLength: 1, maxLength: 200, description: 'Who asked: a customer, the operator' }),
    },
    { additionalProperties: false },
  ),
  'customer.check.request': Type.Object({ customerId: CustomerId }, { additionalProperties: false }),
  'customer.checked': Type.Union([
    Type.Object({ result: Type.Literal('known') }, { additionalProperties: false }),
    Type.Object({ result: Type.Literal('unknown'), reason: Reason }, { additionalProperties: false }),
  ]),
  'stock.check.request': Type.Object({ items: OrderItems }, { additionalProperties: false }),
  'stock.checked': Type.Union([
    Type.Object(
      { result: Type.Literal('reserved'), lines: Type.Array(PricedLine, { minItems: 1 }), total: Cents },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        result: Type.Literal('insufficient'),
        reason: Reason,
        missing: Type.Array(
          Type.Object(
            { sku: Sku, requested: Type.Integer(), available: Type.Integer() },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    // A SKU that is not in the catalogue: a mistake in the order, not a stock problem.
    Type.Object(
      { result: Type.Literal('unknown-sku'), reason: Reason, skus: Type.Array(Sku, { minItems: 1 }) },
      { additionalProperties: false },
    ),
  ]),
  'stock.sku.reserve': Type.Object(
    { sku: Sku, quantity: Type.Integer({ minimum: 1 }) },
    { additionalProperties: false },
  ),
  'stock.sku.reserved': Type.Union([
    Type.Object({ sku: Sku, result: Type.Literal('reserved'), unitPrice: Cents }, { additionalProperties: false }),
    Type.Object(
      { sku: Sku, result: Type.Literal('insufficient'), requested: Type.Integer(), available: Type.Integer() },
      { additionalProperties: false },
    ),
    Type.Object({ sku: Sku, result: Type.Literal('unknown-sku') }, { additionalProperties: false }),
  ]),
  'stock.sku.release': Type.Object({ sku: Sku }, { additionalProperties: false }),
  'stock.sku.sell': Type.Object({ sku: Sku }, { additionalProperties: false }),
  'stock.sku.restock': Type.Object(
    { sku: Sku, quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }), restockId: Id },
    { additionalProperties: false },
  ),
  'stock.release': Type.Object({ reason: Reason }, { additionalProperties: false }),
  'stock.released': Type.Object({ released: Type.Array(OrderItem), reason: Reason }, { additionalProperties: false }),
  'payment.request': Type.Object(
    {
      customerId: CustomerId,
      amount: Cents,
      /** Billing declines a request it sees after this instant (epoch ms): the saga gave up. */
      expiresAt: Type.Integer({ minimum: 0 }),
    },
    { additionalProperties: false },
  ),
  'payment.result': Type.Union([
    Type.Object({ result: Type.Literal('approved'), paymentId: Id, amount: Cents }, { additionalProperties: false }),
    Type.Object({ result: Type.Literal('declined'), reason: Reason }, { additionalProperties: false }),
  ]),
  'billing.credit.authorize': Type.Object({ customerId: CustomerId, amount: Cents }, { additionalProperties: false }),
  'billing.credit.authorized': Type.Union([
    Type.Object({ result: Type.Literal('approved'), paymentId: Id, amount: Cents }, { additionalProperties: false }),
    Type.Object({ result: Type.Literal('declined'), reason: Reason }, { additionalProperties: false }),
  ]),
  'billing.credit.void': Type.Object({ customerId: CustomerId }, { additionalProperties: false }),
  'billing.credit.capture': Type.Object({ customerId: CustomerId }, { additionalProperties: false }),
  'billing.credit.top-up': Type.Object(
    { customerId: CustomerId, amount: Type.Integer({ minimum: 1, maximum: 100_000_000 }), topUpId: Id },
    { additionalProperties: false },
  ),
  'payment.cancel': Type.Object({ reason: Reason }, { additionalProperties: false }),
  'order.confirmed': Type.Object(
    { customerId: CustomerId, lines: Type.Array(PricedLine), total: Cents },
    { additionalProperties: false },
  ),
  'order.failed': Type.Object(
    { customerId: CustomerId, step: Type.String(), reason: Reason },
    { additionalProperties: false },
  ),
} as const satisfies Record<SagaTopic, TSchema>;

type Payloads = { [T in SagaTopic]: Static<(typeof PAYLOADS)[T]> };

declare module '@ordersaga/runtime' {
  // The runtime's messages are these (see its contract.ts).
  interface MessagePayloads extends Payloads {}
}
