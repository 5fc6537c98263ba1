import { randomUUID } from 'node:crypto';
import { ReadPosition, type TopicNamer } from '@ordersaga/runtime';
import type { Admin, Consumer, Kafka } from 'kafkajs';

/**
 * The ids of every order ever placed (the keys of `order.placed`, read from its start), so a
 * SagaOrder created with kubectl is placed once even if the controller died between publishing
 * it and recording that in the object's status.
 */
export class PlacedOrders {
  private readonly ids = new Set<string>();
  private readonly consumer: Consumer;
  private readonly position: ReadPosition;

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    private readonly namer: TopicNamer,
  ) {
    this.consumer = kafka.consumer({
      groupId: namer.id(`operator.placed-reader.${randomUUID()}`),
      maxWaitTimeInMs: 500,
    });
    this.position = new ReadPosition(this.consumer);
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.namer.physical('order.placed'), fromBeginning: true });
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) if (message.key) this.ids.add(message.key.toString('utf8'));
      },
    });
  }

  /** Resolves once every order placed before this call is known. */
  caughtUp(): Promise<void> {
    return this.position.reached(this.admin, this.namer.physical('order.placed'));
  }

  has(orderId: string): boolean {
    return this.ids.has(orderId);
  }

  add(orderId: string): void {
    this.ids.add(orderId);
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}
