import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';

/** A consumed position to commit: the next offset to read of a topic's partition. */
export interface ConsumedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * The Kafka transactions of a consumer group's work: what it sends and the offsets it consumed,
 * committed together or not at all.
 *
 * Transactions alternate between two producers: a transactional id cannot begin its next
 * transaction until the coordinator has finished writing the last one's markers
 * (CONCURRENT_TRANSACTIONS), and the other id is long done by then. Ids are stable per replica
 * (`<idPrefix>.a`, `.b`), so a restarted replica fences its dead predecessor's open transactions.
 */
export class Transactions {
  private readonly producers: Producer[];
  private count = 0;

  constructor(
    kafka: Kafka,
    idPrefix: string,
    private readonly groupId: string,
  ) {
    this.producers = (['a', 'b'] as const).map((lane) =>
      kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        transactionalId: `${idPrefix}.${lane}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // While the broker is away the processor waits for it rather than give up on the batch.
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 20, maxRetryTime: 5_000 },
      }),
    );
  }

  async connect(): Promise<void> {
    await Promise.all(this.producers.map((p) => p.connect()));
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.producers.map((p) => p.disconnect()));
  }

  /** One transaction: the messages (by physical topic) and the consumed offsets. Nothing: no-op. */
  async commit(messages: ReadonlyMap<string, Message[]>, offsets: readonly ConsumedOffset[]): Promise<void> {
    if (messages.size === 0 && offsets.length === 0) return;
    const producer = this.producers[this.count++ % this.producers.length]!;
    const transaction = await producer.transaction();
    try {
      const topicMessages = [...messages].map(([topic, list]) => ({ topic, messages: list }));
      if (topicMessages.length > 0) await transaction.sendBatch({ topicMessages });
      if (offsets.length > 0) {
        const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
        for (const { topic, partition, offset } of offsets)
          byTopic.set(topic, [...(byTopic.get(topic) ?? []), { partition, offset }]);
        await transaction.sendOffsets({
          consumerGroupId: this.groupId,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        });
      }
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch(() => undefined);
      throw err;
    }
  }
}
