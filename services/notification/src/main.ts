import { Type } from '@sinclair/typebox';
import { CustomerId, orderRetentionMs, serviceContract, type SagaState } from '@ordersaga/contracts';
import {
  createLogger,
  envInt,
  envJson,
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

main(async () => {
  const client = new WebhookClient({
    allowHttp: envString('NOTIFICATION_WEBHOOK_ALLOW_HTTP', 'false') === 'true',
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
    routes: (app) => {
      app.get<{ Querystring: { customerId?: string } }>('/notifications', async (request, reply) => {
        const { customerId } = request.query;
        // Everyone's notifications (webhook URLs included) are the operator's; a customer's own are its.
        if (customerId === undefined ? !isOperator(request) : !mayActFor(request, customerId)) {
          return forbidden(
            reply,
            `${customerId === undefined ? "every customer's" : `customer ${customerId}'s`} notifications are not this token's to list`,
          );
        }
        return [...table.rows()]
          .map(([orderId]) => table.getCommitted(orderId))
          .filter(
            (n): n is Notification => n !== undefined && (customerId === undefined || n.customerId === customerId),
          );
      });
      app.get<{ Params: { orderId: string } }>('/notifications/:orderId', async (request, reply) => {
        const notification = table.getCommitted(request.params.orderId);
        if (!notification) {
          return notFound(reply, `no notification for order ${request.params.orderId}`);
        }
        if (!mayActFor(request, notification.customerId)) {
          return forbidden(reply, `order ${request.params.orderId} is not this token's customer's`);
        }
        return notification;
      });
    },
  });
});
