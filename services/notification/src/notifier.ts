/**
 * Notification: tells the customer, once, how each order ended. The record of what was said is
 * a row of `notification.state` (keyed by orderId): a redelivered or replayed order event finds
 * it and says nothing again. A customer with a webhook also gets an HTTP POST, retried by the
 * runtime with backoff and dead-lettered with the reason when it keeps failing.
 */
import type { AnyEnvelope, Decision, Effect, HandlerContext, Logger, StateView } from '@ordersaga/runtime';

/** Webhook URL per customer. */
export type Webhooks = Readonly<Record<string, string>>;

export interface Notification {
  readonly orderId: string;
  readonly customerId: string;
  readonly outcome: 'confirmed' | 'failed';
  readonly message: string;
  readonly correlationId: string;
  readonly webhook?: string;
  readonly at: string;
}

const euros = (cents: number) => `${(cents / 100).toFixed(2)} EUR`;

function webhookCall(url: string, notification: Notification): Effect {
  return {
    description: `webhook ${url}`,
    run: async () => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `notification-${notification.orderId}` },
        body: JSON.stringify(notification),
        signal: AbortSignal.timeout(5_000),
      });
      if (!response.ok) throw new Error(`webhook answered HTTP ${response.status}`);
    },
  };
}

export function createNotificationHandler(webhooks: Webhooks, log: Logger) {
  return (message: AnyEnvelope, state: StateView<Notification>, { now }: HandlerContext): Decision<Notification> => {
    if (message.type !== 'order.confirmed' && message.type !== 'order.failed') {
      throw new Error(`notification does not handle ${message.type}`);
    }
    if (state.get(message.orderId)) return {};
    const { customerId } = message.payload;
    const text =
      message.type === 'order.confirmed'
        ? `Your order ${message.orderId} is confirmed: ${euros(message.payload.total)}.`
        : `Your order ${message.orderId} could not be completed: ${message.payload.reason}.`;
    const webhook = webhooks[customerId];
    const notification: Notification = {
      orderId: message.orderId,
      customerId,
      outcome: message.type === 'order.confirmed' ? 'confirmed' : 'failed',
      message: text,
      correlationId: message.correlationId,
      ...(webhook ? { webhook } : {}),
      at: now.toISOString(),
    };
    return {
      put: [[message.orderId, notification]],
      effects: [
        {
          description: 'log',
          run: async () => log.info({ customerId, outcome: notification.outcome }, `notify ${customerId}: ${text}`),
        },
        ...(webhook ? [webhookCall(webhook, notification)] : []),
      ],
    };
  };
}
