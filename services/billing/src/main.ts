import { Type } from '@sinclair/typebox';
import { Cents, CustomerId, serviceContract } from '@ordersaga/contracts';
import {
  envJson,
  forbidden,
  holdTimeMs,
  isOperator,
  main,
  mayActFor,
  notFound,
  runService,
  StateTable,
} from '@ordersaga/runtime';
import { authorizationHold, createBillingHandler, Ledger, type Accounts, type Payment } from './accounts.js';

/** What the local run starts with when BILLING_ACCOUNTS is not set (credit in cents). */
const DEMO_ACCOUNTS: Accounts = { alice: 100_000, bob: 1_000 };

main(async () => {
  const accounts = envJson('BILLING_ACCOUNTS', Type.Record(CustomerId, Cents), DEMO_ACCOUNTS);
  const holdMs = holdTimeMs();
  const table = new StateTable<Payment>();
  const ledger = new Ledger(accounts, table);
  await runService({
    contract: serviceContract('billing'),
    table,
    handle: createBillingHandler(ledger, holdMs),
    holds: authorizationHold(holdMs),
    routes: (app) => {
      app.get('/accounts', async (request, reply) => {
        if (!isOperator(request)) return forbidden(reply, "every customer's account is for the operator scope only");
        return ledger.all();
      });
      app.get<{ Params: { customerId: string } }>('/accounts/:customerId', async (request, reply) => {
        if (!mayActFor(request, request.params.customerId)) {
          return forbidden(reply, `this token is not for customer ${request.params.customerId}`);
        }
        const account = ledger.account(request.params.customerId);
        if (!account) {
          return notFound(reply, `unknown customer ${request.params.customerId}`);
        }
        return account;
      });
      app.get<{ Params: { orderId: string } }>('/payments/:orderId', async (request, reply) => {
        const payment = table.getCommitted(request.params.orderId);
        if (!payment) {
          return notFound(reply, `no payment for ${request.params.orderId}`);
        }
        if (!mayActFor(request, payment.customerId)) {
          return forbidden(reply, `payment ${request.params.orderId} is not this token's customer's`);
        }
        return payment;
      });
    },
  });
});
