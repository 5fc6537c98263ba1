import { Type } from '@sinclair/typebox';
import { CustomerId, serviceContract, type SagaState } from '@ordersaga/contracts';
import { createLogger, envJson, main, notFound, runService, StateTable } from '@ordersaga/runtime';
import { createNotificationHandler, type Notification, type Webhooks } from './notifier.js';

main(async () => {
  const webhooks: Webhooks = envJson(
    'NOTIFICATION_WEBHOOKS',
    Type.Record(CustomerId, Type.String({ pattern: '^https?://' })),
    {},
  );
  const table = new StateTable<Notification>();
  const sagas = new StateTable<SagaState>();
  await runService({
    contract: serviceContract('notification'),
    table,
    lookups: [{ topic: 'order.state', table: sagas }],
    handle: createNotificationHandler(webhooks, sagas, createLogger('notification')),
    routes: (app) => {
      app.get<{ Querystring: { customerId?: string } }>('/notifications', async (request) => {
        const { customerId } = request.query;
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
        return notification;
      });
    },
  });
});
