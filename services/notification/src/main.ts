import { Type, type Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import {
  AttemptQuery,
  CustomerId,
  orderRetentionMs,
  runKeyOf,
  serviceContract,
  type SagaState,
} from '@ordersaga/contracts';
import {
  createLogger,
  envInt,
  envJson,
  envBoolean,
  envString,
  forbidden,
  isOperator,
  main,
  mayActFor,
  notFound,
  runService,
  StateTable,
} from '@ordersaga/runtime';
import { createNotificationHandler, notificationLifecycle, type Notification, type Webhooks } from './notifier.js';
import { WebhookClient } from './webhook.js';

/** How many notifications a list gives when not told, and at most. */
const DEFAULT_LIST = 100;
const MAX_LIST = 1_000;

main(async () => {
  const client = new WebhookClient({
    allowHttp: envBoolean('NOTIFICATION_WEBHOOK_ALLOW_HTTP', false),
    allowedCidrs: envString('NOTIFICATION_WEBHOOK_ALLOWED_CIDRS', '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    timeoutMs: envInt('NOTIFICATION_WEBHOOK_TIMEOUT_MS', 5_000),
    maxResponseBytes: envInt('NOTIFICATION_WEBHOOK_MAX_RESPONSE_BYTES', 65_536),
  });
  const webhooks: Webhooks = envJson('NOTIFICATION_WEBHOOKS', Type.Record(CustomerId, Type.String()), {});
  for (const [customerId, url] of Object.entries(webhooks)) client.checkUrl(url, `NOTIFICATION_WEBHOOKS.${customerId}`);
  const table = new StateTable<Notification>(notificationLifecycle);
  const sagas = new StateTable<SagaState>();
  await runService({
    contract: serviceContract('notification'),
    table,
    lookups: [{ topic: 'order.state', table: sagas }],
    retentionMs: orderRetentionMs(),
    handle: createNotificationHandler(webhooks, client, sagas, createLogger('notification')),
    routes: (app, { routing }) => {
      app.get<{ Querystring: { customerId?: string; limit?: string } }>(
        '/notifications',
        {
          schema: {
            querystring: Type.Object(
              {
                customerId: Type.Optional(CustomerId),
                limit: Type.Optional(
                  Type.String({
                    pattern: `^([1-9][0-9]{0,2}|${MAX_LIST})$`,
                    description: `At most this many (1 to ${MAX_LIST}), by order id`,
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          },
        },
        async (request, reply) => {
          const { customerId } = request.query;
          const limit = Number(request.query.limit ?? DEFAULT_LIST);
          // Everyone's notifications (webhook URLs included) are the operator's; a customer's own are its.
          if (customerId === undefined ? !isOperator(request) : !mayActFor(request, customerId)) {
            return forbidden(
              reply,
              `${customerId === undefined ? "every customer's" : `customer ${customerId}'s`} notifications are not this token's to list`,
            );
          }
          // Each replica gives the first `limit` of the partitions it keeps; the first of all are among them.
          const all = await routing.gather(request, reply, () => {
            const mine: Notification[] = [];
            for (const [, row] of table.rows()) {
              if (mine.length >= limit) break;
              if (!routing.servesPartition(row.partition)) continue;
              if (customerId === undefined || row.value.customerId === customerId) mine.push(row.value);
            }
            return mine;
          });
          return all && all.sort((a, b) => a.orderId.localeCompare(b.orderId)).slice(0, limit);
        },
      );
      const byOrder = { ownerKey: (request: FastifyRequest) => (request.params as { orderId: string }).orderId };
      app.get<{ Params: { orderId: string }; Querystring: Static<typeof AttemptQuery> }>(
        '/notifications/:orderId',
        { config: byOrder, schema: { querystring: AttemptQuery } },
        async (request, reply) => {
          // A retried order is told of each run: the newest is given, unless ?attempt= says.
          const { orderId } = request.params;
          const run = runKeyOf(orderId, request.query.attempt, (key) => table.getCommitted(key) !== undefined);
          const notification = run === undefined ? undefined : table.getCommitted(run);
          if (!notification) {
            const which = request.query.attempt ? ` (attempt ${request.query.attempt})` : '';
            return notFound(reply, `no notification for order ${orderId}${which}`);
          }
          if (!mayActFor(request, notification.customerId)) {
            return forbidden(reply, `order ${request.params.orderId} is not this token's customer's`);
          }
          return notification;
        },
      );
    },
  });
});
