import { Type, type Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import {
  AttemptQuery,
  Cents,
  CommandHeaders,
  commandIdOf,
  CustomerId,
  orderRetentionMs,
  runKeyOf,
  serviceContract,
} from '@ordersaga/contracts';
import {
  envJson,
  forbidden,
  holdTimeMs,
  initial,
  isOperator,
  keyedBy,
  main,
  mayActFor,
  notFound,
  runService,
  StateTable,
} from '@ordersaga/runtime';
import {
  accountOf,
  accounts,
  authorizationHold,
  billingLifecycle,
  createBillingHandler,
  creditOf,
  type Accounts,
  type BillingRow,
} from './accounts.js';

/** What the local run starts with when BILLING_ACCOUNTS is not set (credit in cents). */
const DEMO_ACCOUNTS: Accounts = { alice: 100_000, bob: 1_000 };

const TopUpBody = Type.Object(
  { amount: Type.Integer({ minimum: 1, maximum: 100_000_000 }) },
  { additionalProperties: false },
);

main(async () => {
  const seeds = envJson('BILLING_ACCOUNTS', Type.Record(CustomerId, Cents), DEMO_ACCOUNTS);
  const holdMs = holdTimeMs();
  const table = new StateTable<BillingRow>(billingLifecycle);
  const committed = (key: string) => table.getCommitted(key);
  await runService({
    contract: serviceContract('billing'),
    table,
    handle: createBillingHandler(seeds, holdMs),
    holds: authorizationHold(holdMs),
    retentionMs: orderRetentionMs(),
    publishes: true,
    routes: (app, { publisher, routing }) => {
      // A customer's credit is read on its partition's owner, a payment on its order's; the list,
      // from every replica's part.
      const byCustomer = {
        ownerKey: (request: FastifyRequest) => (request.params as { customerId: string }).customerId,
      };
      const seedOrder = Object.keys(seeds);
      app.get('/accounts', async (request, reply) => {
        if (!isOperator(request)) return forbidden(reply, "every customer's account is for the operator scope only");
        const all = await routing.gather(request, reply, () =>
          accounts(committed, seeds).filter(({ customerId }) => routing.servesKey(customerId)),
        );
        return all && all.sort((a, b) => seedOrder.indexOf(a.customerId) - seedOrder.indexOf(b.customerId));
      });
      app.get<{ Params: { customerId: string } }>(
        '/accounts/:customerId',
        { config: byCustomer },
        async (request, reply) => {
          if (!mayActFor(request, request.params.customerId)) {
            return forbidden(reply, `this token is not for customer ${request.params.customerId}`);
          }
          const credit = creditOf(request.params.customerId, committed, seeds);
          if (!credit) return notFound(reply, `unknown customer ${request.params.customerId}`);
          return accountOf(credit);
        },
      );
      // Credit added through the customer's one owner; the same Idempotency-Key adds it once.
      app.post<{
        Params: { customerId: string };
        Body: Static<typeof TopUpBody>;
        Headers: Static<typeof CommandHeaders>;
      }>(
        '/accounts/:customerId/top-up',
        {
          config: byCustomer,
          schema: {
            body: TopUpBody,
            headers: CommandHeaders,
          },
        },
        async (request, reply) => {
          const { customerId } = request.params;
          if (!isOperator(request)) return forbidden(reply, 'topping up an account is for the operator scope only');
          if (!creditOf(customerId, committed, seeds)) return notFound(reply, `unknown customer ${customerId}`);
          const topUpId = commandIdOf(request.headers);
          const { amount } = request.body;
          await publisher!.publish(
            keyedBy(
              initial('billing.credit.top-up', topUpId, { customerId, amount, topUpId }, new Date(), request.id),
              customerId,
            ),
          );
          return reply.code(202).send({ customerId, amount, topUpId });
        },
      );
      const byOrder = { ownerKey: (request: FastifyRequest) => (request.params as { orderId: string }).orderId };
      app.get<{ Params: { orderId: string }; Querystring: Static<typeof AttemptQuery> }>(
        '/payments/:orderId',
        { config: byOrder, schema: { querystring: AttemptQuery } },
        async (request, reply) => {
          // A retried order has a payment per run: the newest is the one that counts, unless ?attempt= says.
          const { orderId } = request.params;
          const run = runKeyOf(orderId, request.query.attempt, (key) => committed(key)?.kind === 'order');
          const payment = run === undefined ? undefined : committed(run);
          if (payment?.kind !== 'order') {
            const which = request.query.attempt ? ` (attempt ${request.query.attempt})` : '';
            return notFound(reply, `no payment for ${orderId}${which}`);
          }
          if (!mayActFor(request, payment.customerId)) {
            return forbidden(reply, `payment ${request.params.orderId} is not this token's customer's`);
          }
          return payment;
        },
      );
    },
  });
});
