import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { ReadPosition } from './read-position.js';

/** A record of a topic and the partition it was read from. */
export interface ReadRecord {
  readonly partition: number;
  readonly message: KafkaMessage;
}

/**
 * Every committed record of a topic, from its start to its end as of the call (with
 * `uncommitted`, the records of aborted and open transactions too): for tools and tests that
 * look at a topic as a whole. The consumer group is throwaway; nothing is committed to it.
 */
export async function readWholeTopic(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  groupId: string,
  { uncommitted = false, timeoutMs = 60_000 } = {},
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  const consumer = kafka.consumer({ groupId, readUncommitted: uncommitted, maxWaitTimeInMs: 100 });
  const position = new ReadPosition(consumer);
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) records.push({ partition: batch.partition, message });
      },
    });
    await position.reached(admin, topic, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
  return records;
}
