import { TopicFollower, type TopicNamer } from '@ordersaga/runtime';
import type { Admin, Kafka } from 'kafkajs';

/**
 * The ids of every order ever placed (the keys of `order.placed`, read from its start), so a
 * SagaOrder created with kubectl is placed once even if the controller died between publishing
 * it and recording that in the object's status.
 */
export class PlacedOrders {
  private readonly ids = new Set<string>();
  private readonly follower: TopicFollower;

  constructor(kafka: Kafka, admin: Admin, namer: TopicNamer) {
    this.follower = new TopicFollower(
      kafka,
      admin,
      namer.physical('order.placed'),
      namer.id('operator.placed-reader'),
      (message) => {
        if (message.key) this.ids.add(message.key.toString('utf8'));
      },
    );
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  /** Resolves once every order placed before this call is known. */
  caughtUp(): Promise<void> {
    return this.follower.caughtUp();
  }

  has(orderId: string): boolean {
    return this.ids.has(orderId);
  }

  add(orderId: string): void {
    this.ids.add(orderId);
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
