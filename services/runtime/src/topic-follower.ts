import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { ReadPosition } from './read-position.js';

/**
 * Reads a whole topic from its beginning and then keeps up with it, handing each committed
 * message to `onMessage`: the way a replica rebuilds what a topic holds (state rows, ids seen).
 * A consumer group of its own per start, named `<groupPrefix>.<random>`: nothing is committed,
 * every start reads from offset 0.
 */
export class TopicFollower {
  private readonly consumer: Consumer;
  private readonly position: ReadPosition;

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    /** The topic's physical name. */
    private readonly topic: string,
    groupPrefix: string,
    private readonly onMessage: (message: KafkaMessage, partition: number) => void,
  ) {
    this.consumer = kafka.consumer({
      groupId: `${groupPrefix}.${randomUUID()}`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      // A fetch waits this long when there is nothing new; a stop waits for the fetch.
      maxWaitTimeInMs: 500,
    });
    this.position = new ReadPosition(this.consumer);
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) this.onMessage(message, batch.partition);
      },
    });
  }

  /** Resolves once every message committed before this call has been handed over. */
  caughtUp(timeoutMs?: number): Promise<void> {
    return this.position.reached(this.admin, this.topic, timeoutMs);
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}
