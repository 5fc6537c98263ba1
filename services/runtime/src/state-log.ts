import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from './context.js';
import type { TopicNamer } from './kafka.js';
import { sleep } from './retry.js';
import type { Row, StateTable } from './state-table.js';
import type { StateTopic } from './topics.js';

/** How a row is stored in a state topic (key: the row's key; partition: the row's partition). */
export interface StoredRow<V> {
  readonly rev: number;
  readonly value: V;
}

/**
 * Follows a compacted state topic from its beginning into a StateTable, so that every replica
 * sees every row (reads, cross-partition sums) and a replica that takes over a partition sees
 * what the previous owner committed. Only committed transactions are read.
 */
export class StateLog<V> {
  private readonly consumer: Consumer;
  /** Next offset to read, per partition, as far as this reader knows. */
  private readonly positions = new Map<number, number>();

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    private readonly namer: TopicNamer,
    private readonly topic: StateTopic,
    private readonly table: StateTable<V>,
    readerName: string,
    private readonly log: Logger,
  ) {
    // A group of its own per start: nothing is committed, the table is rebuilt from offset 0.
    this.consumer = kafka.consumer({
      groupId: namer.id(`${readerName}.state-reader.${randomUUID()}`),
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.namer.physical(this.topic), fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          if (message.value === null) continue;
          const stored = JSON.parse(message.value.toString('utf8')) as StoredRow<V>;
          const row: Row<V> = { rev: stored.rev, partition: batch.partition, value: stored.value };
          this.table.applyFromLog(message.key?.toString('utf8') ?? '', row);
        }
        this.advance(batch.partition, Number(batch.lastOffset()) + 1);
        if (batch.offsetLag() === '0') this.advance(batch.partition, Number(batch.highWatermark));
      },
    });
  }

  private advance(partition: number, next: number): void {
    if (next > (this.positions.get(partition) ?? 0)) this.positions.set(partition, next);
  }

  /**
   * Waits until everything committed to the state topic before this call has been applied.
   * Called before a replica processes a partition it was just given.
   */
  async catchUp(timeoutMs = 60_000): Promise<void> {
    const ends = await this.admin.fetchTopicOffsets(this.namer.physical(this.topic));
    const deadline = Date.now() + timeoutMs;
    const behind = () => ends.filter((e) => (this.positions.get(e.partition) ?? 0) < Number(e.high));
    let lagging = behind();
    while (lagging.length > 0) {
      if (Date.now() > deadline) {
        throw new Error(
          `state topic ${this.topic} not caught up after ${timeoutMs} ms: partitions ${lagging.map((e) => e.partition).join(',')}`,
        );
      }
      await sleep(20);
      lagging = behind();
    }
    this.log.debug({ topic: this.topic, rows: this.table.size }, 'state caught up');
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
