/**
 * Notification: tells the customer, once, how each order ended. The record of what was said is
 * a row of `notification.state` (keyed by the run's `attemptKey`: the orderId, `<orderId>@2`
 * for a retry, which ends anew and is told anew): a redelivered or replayed order event finds
 * it and says nothing again. A customer with a webhook also gets an HTTP POST, retried by the
 * runtime with backoff and dead-lettered with the reason when it keeps failing or is refused
 * (webhook.ts: an address that is not public, a redirect).
 *
 * An order event is only believed when the saga itself ended so: its row in `order.state` (a
 * lookup table, committed in the same transaction as the event) has the same terminal phase, or
 * has gone on to a later attempt (an attempt is retried only once it has ended).
 * An event for an order with no such saga (a bug, a replay after retention, a foreign writer)
 * tells nobody anything: it goes to the dead-letter topic with the reason.
 */
import { attemptKey, attemptOf, CANCELLED_KIND, type SagaState } from '@ordersaga/contracts';
import {
  type AnyEnvelope,
  type Decision,
  type Effect,
  type HandlerContext,
  type Logger,
  type RowLifecycle,
  type StateView,
} from '@ordersaga/runtime';
import type { WebhookClient } from './webhook.js';

/** Webhook URL per customer. */
export type Webhooks = Readonly<Record<string, string>>;

export interface Notification {
  readonly orderId: string;
  /** The run of the order's saga that ended: absent for the first. */
  readonly attempt?: number;
  readonly customerId: string;
  readonly outcome: 'confirmed' | 'failed';
  readonly message: string;
  readonly correlationId: string;
  readonly webhook?: string;
  readonly at: string;
  /**
   * How it is known that the order ended so: the saga's own row, as read from its state topic,
   * ended so or gone on to a later attempt.
   */
  readonly knownFrom: {
    readonly topic: 'order.state';
    readonly phase: string;
    readonly attempt: number;
    readonly at: string;
  };
}

/** A notification is sent once: its story ends then, and it is retired the retention after. */
export const notificationLifecycle: RowLifecycle<Notification> = {
  inFlight: () => false,
  endedAt: (notification) => Date.parse(notification.at),
};

const euros = (cents: number) => `${(cents / 100).toFixed(2)} EUR`;

/** Makes a webhook call (WebhookClient: refuses what is not safe to call). */
export type WebhookPoster = Pick<WebhookClient, 'post'>;

function webhookCall(poster: WebhookPoster, url: string, notification: Notification): Effect {
  return {
    description: `webhook ${url}`,
    run: () =>
      poster.post(new URL(url), JSON.stringify(notification), {
        'content-type': 'application/json',
        'idempotency-key': `notification-${attemptKey(notification)}`,
      }),
  };
}

export function createNotificationHandler(
  webhooks: Webhooks,
  poster: WebhookPoster,
  sagas: StateView<SagaState>,
  log: Logger,
) {
  return (
    message: AnyEnvelope,
    state: StateView<Notification>,
    { now, lookupsCaughtUp }: HandlerContext,
  ): Decision<Notification> => {
    if (message.type !== 'order.confirmed' && message.type !== 'order.failed') {
      throw new Error(`notification does not handle ${message.type}`);
    }
    const run = attemptKey(message);
    if (state.get(run)) return {};
    const ended = message.type === 'order.confirmed' ? 'CONFIRMED' : 'FAILED';
    const saga = sagas.get(message.orderId);
    const laterAttempt = saga !== undefined && attemptOf(saga) > attemptOf(message);
    if (saga?.phase !== ended && !laterAttempt) {
      // The saga's row is committed with the event, but the lookup may not have read it yet.
      if (!lookupsCaughtUp) return { awaitLookups: true };
      const found = saga ? `its saga is ${saga.phase}` : 'it has no saga';
      throw new Error(`${message.type} for order ${message.orderId}, but ${found} in order.state: nobody is told`);
    }
    const { customerId } = message.payload;
    if (saga.customerId !== customerId) {
      throw new Error(`${message.type} for order ${message.orderId} names ${customerId}, its saga ${saga.customerId}`);
    }
    const text =
      message.type === 'order.confirmed'
        ? `Your order ${message.orderId} is confirmed: ${euros(message.payload.total)}.`
        : !laterAttempt && saga.failure?.kind === CANCELLED_KIND
          ? `Your order ${message.orderId} is cancelled, as asked: nothing is charged.`
          : `Your order ${message.orderId} could not be completed: ${message.payload.reason}.`;
    const webhook = webhooks[customerId];
    const notification: Notification = {
      orderId: message.orderId,
      ...(message.attempt ? { attempt: message.attempt } : {}),
      customerId,
      outcome: message.type === 'order.confirmed' ? 'confirmed' : 'failed',
      message: text,
      correlationId: message.correlationId,
      ...(webhook ? { webhook } : {}),
      at: now.toISOString(),
      knownFrom: { topic: 'order.state', phase: saga.phase, attempt: attemptOf(saga), at: saga.updatedAt },
    };
    return {
      put: [[run, notification]],
      effects: [
        {
          description: 'log',
          run: async () => log.info({ customerId, outcome: notification.outcome }, `notify ${customerId}: ${text}`),
        },
        ...(webhook ? [webhookCall(poster, webhook, notification)] : []),
      ],
    };
  };
}
