/**
 * The one list of Kafka topics. Services, the local runner, the tests and the Kubernetes model
 * (topics, ACLs) all read it; nothing else names a topic by hand.
 *
 * Saga topics are keyed by orderId, so one saga's messages stay ordered on one partition; a
 * service's internal topics are keyed by what one owner decides on (`key`: a SKU's stock), so
 * its requests are repartitioned to that owner, as Kafka Streams does. State topics are
 * compacted tables whose rows live on the partition of the messages that change them, written
 * in the same Kafka transaction as the messages a batch produces.
 */

import { deadLetterTopicOf, type TopicDeclaration } from '@ordersaga/runtime';
import { DEFAULT_ORDER_RETENTION_MS } from './retention.js';
import type { ComponentName, ServiceName } from './components.js';

export interface TopicSpec {
  /** What flows on it, for people and docs. */
  readonly description: string;
  /** The service that writes it (or, for the controller's own state, the controller). */
  readonly producer: ComponentName;
  /** The services that consume it (each in its own consumer group). */
  readonly consumers: readonly ServiceName[];
  /** Compacted topics hold a service's durable state (latest value per key). */
  readonly compacted?: boolean;
  /** Services that read a state topic as a lookup table (never writing it). */
  readonly readers?: readonly ServiceName[];
  /** What its Kafka key is, when not the orderId: the one owner of that key decides. */
  readonly key?: 'sku' | 'customerId';
}

export const SAGA_TOPICS = {
  'order.placed': {
    description: 'An order was accepted over HTTP; starts a saga.',
    producer: 'order',
    consumers: ['order'],
  },
  'order.cancel': {
    description:
      'Command: cancel an order whose saga has not ended (DELETE /orders/:id); its compensations run and it ends FAILED, cancelled.',
    producer: 'order',
    consumers: ['order'],
  },
  'order.retry': {
    description:
      'Command: run a failed saga again from its first step, as a new attempt of the same order (POST /orders/:id/retry, a SagaOrder retry annotation); once per token.',
    producer: 'order',
    consumers: ['order'],
  },
  'customer.check.request': {
    description: 'Command (saga v2): is the customer one Billing has an account for?',
    producer: 'order',
    consumers: ['billing'],
  },
  'customer.checked': {
    description: 'Reply (saga v2): the customer is known, or not (the order fails before anything is held).',
    producer: 'billing',
    consumers: ['order'],
  },
  'stock.check.request': {
    description: 'Command: reserve the items of an order (a hold, sold on confirmation).',
    producer: 'order',
    consumers: ['stock'],
  },
  'stock.checked': {
    description: 'Reply: items reserved (with prices), insufficient, or a SKU not in the catalogue.',
    producer: 'stock',
    consumers: ['order'],
  },
  'stock.sku.reserve': {
    description: "Internal: hold units of one SKU for an order, decided by the SKU's one owner.",
    producer: 'stock',
    consumers: ['stock'],
    key: 'sku',
  },
  'stock.sku.reserved': {
    description: "Internal: the SKU owner's answer to the order's reservation (held with its price, or not).",
    producer: 'stock',
    consumers: ['stock'],
  },
  'stock.sku.release': {
    description: "Internal: give an order's units of one SKU back.",
    producer: 'stock',
    consumers: ['stock'],
    key: 'sku',
  },
  'stock.sku.sell': {
    description: "Internal: an order's units of one SKU are sold (confirmed).",
    producer: 'stock',
    consumers: ['stock'],
    key: 'sku',
  },
  'stock.sku.restock': {
    description: 'Units added to a SKU (POST /stock/:sku/restock), once per restock id.',
    producer: 'stock',
    consumers: ['stock'],
    key: 'sku',
  },
  'stock.release': {
    description: 'Compensation: release what an order reserved.',
    producer: 'order',
    consumers: ['stock'],
  },
  'stock.released': {
    description: 'Reply: the reservation of an order is released.',
    producer: 'stock',
    consumers: ['order'],
  },
  'payment.request': {
    description: 'Command: authorize a payment for an order (a hold on credit, captured on confirmation).',
    producer: 'order',
    consumers: ['billing'],
  },
  'payment.result': {
    description: 'Reply: payment authorized (approved) or declined.',
    producer: 'billing',
    consumers: ['order'],
  },
  'billing.credit.authorize': {
    description: "Internal: hold an amount of a customer's credit for an order, decided by the customer's one owner.",
    producer: 'billing',
    consumers: ['billing'],
    key: 'customerId',
  },
  'billing.credit.authorized': {
    description: "Internal: the customer owner's answer to the order's authorization (held, or declined).",
    producer: 'billing',
    consumers: ['billing'],
  },
  'billing.credit.void': {
    description: "Internal: give an order's hold on a customer's credit back.",
    producer: 'billing',
    consumers: ['billing'],
    key: 'customerId',
  },
  'billing.credit.capture': {
    description: "Internal: take an order's held amount (confirmed).",
    producer: 'billing',
    consumers: ['billing'],
    key: 'customerId',
  },
  'billing.credit.top-up': {
    description: "Credit added to a customer's account (POST /accounts/:customerId/top-up), once per top-up id.",
    producer: 'billing',
    consumers: ['billing'],
    key: 'customerId',
  },
  'payment.cancel': {
    description: 'Compensation: void the authorization of an order (whether or not its reply arrived).',
    producer: 'order',
    consumers: ['billing'],
  },
  'order.confirmed': {
    description: 'Event: the saga ended well; stock is sold, the payment captured and the customer told.',
    producer: 'order',
    consumers: ['stock', 'billing', 'notification'],
  },
  'order.failed': {
    description: 'Event: the saga ended in failure, compensations done; the customer is told.',
    producer: 'order',
    consumers: ['notification'],
  },
} as const satisfies Record<string, TopicSpec>;

export type SagaTopic = keyof typeof SAGA_TOPICS;

export const STATE_TOPICS = {
  'order.state': {
    description: 'Saga state per order (compacted, keyed by orderId); Notification checks an order ended here.',
    producer: 'order',
    consumers: ['order'],
    compacted: true,
    readers: ['notification'],
  },
  'stock.state': {
    description:
      'Reservation per order (keyed by orderId) and units per SKU (keyed sku:<SKU>, on its owner partition), compacted.',
    producer: 'stock',
    consumers: ['stock'],
    compacted: true,
  },
  'billing.state': {
    description:
      'Payment per order (keyed by orderId) and credit per customer (keyed customer:<id>, on its owner partition), compacted.',
    producer: 'billing',
    consumers: ['billing'],
    compacted: true,
  },
  'notification.state': {
    description: 'Notification sent per order (compacted, keyed by orderId).',
    producer: 'notification',
    consumers: ['notification'],
    compacted: true,
  },
  'sagaorder.mirrors': {
    description:
      "The SagaOrder controller's memory (compacted, keyed by orderId): an order has had a SagaOrder, or a user deleted it — it is never created again.",
    producer: 'operator',
    consumers: [],
    compacted: true,
  },
} as const satisfies Record<string, TopicSpec>;

export type StateTopic = keyof typeof STATE_TOPICS;

declare module '@ordersaga/runtime' {
  // The runtime's state topics are these (see its contract.ts).
  interface StateTopics extends Record<StateTopic, true> {}
}

export const DEFAULT_PARTITIONS = 6;

/** Every topic the platform needs, with its settings: what `ensureTopics` creates. */
export function allTopics(partitions = DEFAULT_PARTITIONS): TopicDeclaration[] {
  const saga = Object.keys(SAGA_TOPICS) as SagaTopic[];
  const state = Object.keys(STATE_TOPICS) as StateTopic[];
  return [
    ...saga.map((name) => ({ name, partitions, config: { 'cleanup.policy': 'delete' } })),
    // State must live on the same partition number as the saga messages that change it. A
    // retired row's tombstone is kept as long as an order is known as retired (retention.ts).
    ...state.map((name) => ({
      name,
      partitions,
      config: { 'cleanup.policy': 'compact', 'delete.retention.ms': String(DEFAULT_ORDER_RETENTION_MS) },
    })),
    // Dead letters are kept longer: somebody has to look at them.
    ...saga.map((name) => ({
      name: deadLetterTopicOf(name),
      partitions: 1,
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * 24 * 3600 * 1000) },
    })),
  ];
}

/** The key of a topic whose messages go to the one owner of what they decide on (a SKU, a customer); undefined for orderId. */
export function ownerKeyOf(topic: SagaTopic): TopicSpec['key'] {
  return (SAGA_TOPICS[topic] as TopicSpec).key;
}

/** A service's internal topics: those it both produces and consumes (its owner round trips). */
export function internalTopicsOf(service: ServiceName): SagaTopic[] {
  return topicsConsumedBy(service).filter((topic) => SAGA_TOPICS[topic].producer === service);
}

/** Topics a service consumes in its main consumer group. */
export function topicsConsumedBy(service: ServiceName): SagaTopic[] {
  return (Object.entries(SAGA_TOPICS) as [SagaTopic, TopicSpec][])
    .filter(([, spec]) => spec.consumers.includes(service))
    .map(([name]) => name);
}

const stateTopics = Object.entries(STATE_TOPICS) as Array<[StateTopic, TopicSpec]>;

/** The state topic a service writes: the compacted topic it produces. */
export function stateTopicOf(service: ServiceName): StateTopic {
  const found = stateTopics.find(([, spec]) => spec.producer === service);
  if (!found) throw new Error(`topics.ts has no state topic produced by ${service}`);
  return found[0];
}

/** The state topics a service may read as lookups: those that list it among their readers. */
export function lookupsOf(service: ServiceName): StateTopic[] {
  return stateTopics
    .filter(([, spec]) => (spec.readers as readonly string[] | undefined)?.includes(service))
    .map(([name]) => name);
}
