import type { Admin, Consumer } from 'kafkajs';
import { DEFAULT_BACKOFF, retry, sleep } from './retry.js';

/**
 * Knows how far a consumer has read each partition, so it can tell when it has read everything
 * committed up to a moment. Progress is taken from kafkajs' END_BATCH_PROCESS event, which also
 * fires for fetches that hold only transaction markers or aborted records (eachBatch does not),
 * so a partition that ends with a commit marker is still seen as read to its end.
 */
export class ReadPosition {
  private readonly next = new Map<number, number>();

  constructor(consumer: Consumer) {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const next = Number(payload.lastOffset) + 1;
      if (next > (this.next.get(payload.partition) ?? 0)) this.next.set(payload.partition, next);
    });
  }

  /**
   * Resolves once everything committed to `topic` before this call has been read.
   * `admin.fetchTopicOffsets` gives the read-committed end of each partition; a partition whose
   * end is its start has nothing to read (and produces no batch to learn from).
   */
  async reached(admin: Admin, topic: string, timeoutMs = 60_000): Promise<void> {
    const ends = await retry(() => admin.fetchTopicOffsets(topic), DEFAULT_BACKOFF);
    const behind = () =>
      ends.filter((e) => Number(e.offset) > Number(e.low) && (this.next.get(e.partition) ?? 0) < Number(e.offset));
    const deadline = Date.now() + timeoutMs;
    for (let lagging = behind(); lagging.length > 0; lagging = behind()) {
      if (Date.now() > deadline) {
        throw new Error(
          `${topic} not read to its end after ${timeoutMs} ms (partitions ${lagging.map((e) => e.partition).join(',')})`,
        );
      }
      await sleep(10);
    }
  }
}
