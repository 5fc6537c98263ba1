import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from './context.js';
import type { TopicNamer } from './kafka.js';
import type { Row, StateTable } from './state-table.js';
import { TopicFollower } from './topic-follower.js';
import type { StateTopic } from './contract.js';

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
  private readonly follower: TopicFollower;

  constructor(
    kafka: Kafka,
    admin: Admin,
    namer: TopicNamer,
    private readonly topic: StateTopic,
    private readonly table: StateTable<V>,
    readerName: string,
    private readonly log: Logger,
  ) {
    this.follower = new TopicFollower(
      kafka,
      admin,
      namer.physical(topic),
      namer.id(`${readerName}.state-reader`),
      (message, partition) => {
        if (message.value === null) return;
        const stored = JSON.parse(message.value.toString('utf8')) as StoredRow<V>;
        const row: Row<V> = { rev: stored.rev, partition, value: stored.value };
        this.table.applyFromLog(message.key?.toString('utf8') ?? '', row);
      },
    );
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  /**
   * Waits until everything committed to the state topic before this call has been applied.
   * Called before a replica processes a partition it was just given.
   */
  async catchUp(timeoutMs = 60_000): Promise<void> {
    await this.follower.caughtUp(timeoutMs);
    this.log.debug({ topic: this.topic, rows: this.table.size }, 'state caught up');
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
