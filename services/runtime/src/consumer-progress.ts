import type { Admin, Consumer, TopicPartitionOffset } from 'kafkajs';
import type { Consumed } from './row-store.js';

/**
 * How far a consumer group has processed each partition it was assigned, so that work done by
 * the clock (releasing an expired hold) can wait until every message that might have changed
 * its mind has been processed.
 *
 * Positions start at the group's committed offsets when partitions are assigned, or further where
 * the partition's state says so (Consumed), and move on as the processor commits what it
 * handled; a fetch that holds only transaction markers (no batch for eachBatch, but kafkajs'
 * END_BATCH_PROCESS event) moves them past the markers too. They are what the group's offsets
 * are brought up to, outside the transactions.
 */
export class ConsumerProgress {
  /** Next offset to process, per partition and physical topic. */
  private readonly next = new Map<number, Map<string, number>>();
  private assignment = 0;

  constructor(
    consumer: Consumer,
    private readonly admin: Admin,
    private readonly groupId: string,
  ) {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // Batches with messages are recorded by the processor once committed (it may stop one
      // half-way on a rebalance, which this event would not tell).
      if (payload.batchSize === 0) this.processed(payload.topic, payload.partition, Number(payload.lastOffset) + 1);
    });
  }

  /** Partitions were (re)assigned: forget the old positions, start from the committed offsets. */
  async assigned(topics: readonly string[]): Promise<void> {
    const assignment = ++this.assignment;
    this.next.clear();
    const committed = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [...topics] });
    if (assignment !== this.assignment) return;
    for (const { topic, partitions } of committed) {
      for (const { partition, offset } of partitions) {
        if (Number(offset) >= 0) this.processed(topic, partition, Number(offset));
      }
    }
  }

  /** What the partition's state says is processed (its Consumed record). */
  processedUpTo(partition: number, consumed: Consumed): void {
    for (const [topic, next] of Object.entries(consumed)) this.processed(topic, partition, next);
  }

  /** The positions of these partitions, as offsets to commit for the group. */
  positions(partitions: ReadonlySet<number>): TopicPartitionOffset[] {
    return [...partitions].flatMap((partition) =>
      [...(this.next.get(partition) ?? [])].map(([topic, next]) => ({ topic, partition, offset: String(next) })),
    );
  }

  /** Everything before `nextOffset` of the partition is processed and committed. */
  processed(topic: string, partition: number, nextOffset: number): void {
    let topics = this.next.get(partition);
    if (!topics) this.next.set(partition, (topics = new Map()));
    if (nextOffset > (topics.get(topic) ?? -1)) topics.set(topic, nextOffset);
  }

  /** Of `partitions`, those in which every message committed to `topic` so far is processed. */
  async caughtUp(topic: string, partitions: ReadonlySet<number>): Promise<Set<number>> {
    const ends = await this.admin.fetchTopicOffsets(topic);
    const done = new Set<number>();
    for (const { partition, offset, low } of ends) {
      if (!partitions.has(partition)) continue;
      const end = Number(offset);
      if (end <= Number(low) || (this.next.get(partition)?.get(topic) ?? -1) >= end) done.add(partition);
    }
    return done;
  }
}
