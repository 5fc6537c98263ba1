import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from './context.js';
import type { TopicNamer } from './kafka.js';
import { ReadPosition } from './read-position.js';
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
  private readonly position: ReadPosition;

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
      // A fetch waits this long when there is nothing new; a stop waits for the fetch.
      maxWaitTimeInMs: 500,
    });
    this.position = new ReadPosition(this.consumer);
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
      },
    });
  }

  /**
   * Waits until everything committed to the state topic before this call has been applied.
   * Called before a replica processes a partition it was just given.
   */
  async catchUp(timeoutMs = 60_000): Promise<void> {
    await this.position.reached(this.admin, this.namer.physical(this.topic), timeoutMs);
    this.log.debug({ topic: this.topic, rows: this.table.size }, 'state caught up');
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
