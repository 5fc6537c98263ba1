import { Partitioners, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import type { Logger } from './context.js';
import { NotRetryable } from './retry.js';

/** The replica lost the partition: another one opened its transactional ids, fencing this one. */
export class PartitionFenced extends NotRetryable {
  override name = 'PartitionFenced';
}

/** Errors the transaction coordinator answers a producer whose id was opened again elsewhere. */
const FENCED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
const isFenced = (err: unknown): boolean => {
  const { type, cause } = err as { type?: string; cause?: unknown };
  return (type !== undefined && FENCED.has(type)) || (cause !== undefined && isFenced(cause));
};

/** The producers of one task (one partition number of the consumed topics). */
interface Task {
  readonly producers: readonly Producer[];
  count: number;
}

/** A task being opened or open; fenced once another replica opened its ids. */
interface TaskEntry {
  readonly opening: Promise<Task>;
  fenced: boolean;
}

/**
 * The Kafka transactions of a consumer group's work, by task: the work of partition number p of
 * the consumed topics (the assigner gives partition p of every topic to one replica) is committed
 * by the producers of task p, whose transactional ids `<group>.task-<p>.a`/`.b` belong to the
 * partition, not to the replica (Kafka Streams' exactly-once without KIP-447). Whichever replica
 * is given partition p opens them first, which bumps their epoch: the replica that had it — dead,
 * stalled, or rescheduled under a new name — can no longer commit anything, and its open
 * transaction is aborted.
 *
 * A task's transactions alternate between its two producers: a transactional id cannot begin its
 * next transaction until the coordinator has written the last one's markers
 * (CONCURRENT_TRANSACTIONS), and the other id is long done by then.
 *
 * How far the input is processed goes in the transaction as a record of the state topic (see
 * Changelog's `Consumed`), not as the group's offsets (sendOffsets): a transaction is then three
 * requests (AddPartitionsToTxn, Produce, EndTxn) instead of five, and the coordinator writes no
 * offsets and no markers to __consumer_offsets. The group's offsets trail (committed outside
 * the transactions, for the tools that show lag); what they say is processed again is skipped.
 */
export class Transactions {
  private readonly tasks = new Map<number, TaskEntry>();
  private partitions: ReadonlySet<number> = new Set();

  constructor(
    private readonly kafka: Kafka,
    private readonly idPrefix: string,
    private readonly log: Logger,
  ) {}

  /**
   * The tasks of the partitions now assigned: new ones opened (fencing their previous owner)
   * before any of their work is done, those no longer assigned closed.
   */
  async assign(partitions: ReadonlySet<number>): Promise<void> {
    this.partitions = partitions;
    const stale = [...this.tasks].filter(([p, task]) => !partitions.has(p) || task.fenced).map(([p]) => p);
    await Promise.all(stale.map((p) => this.close(p)));
    for (const p of partitions) if (!this.tasks.has(p)) this.openTask(p);
    await Promise.all([...partitions].map((p) => this.tasks.get(p)?.opening));
  }

  /** Whether the latest assignment gives this replica the partition. */
  assigned(partition: number): boolean {
    return this.partitions.has(partition);
  }

  /** A fenced task of a partition that is ours again: opened anew (fencing whoever had it since). */
  async reopen(partition: number): Promise<void> {
    if (this.tasks.get(partition)?.fenced) await this.close(partition);
    if (!this.assigned(partition)) return;
    await (this.tasks.get(partition) ?? this.openTask(partition)).opening;
  }

  async disconnect(): Promise<void> {
    await Promise.all([...this.tasks.keys()].map((p) => this.close(p)));
  }

  /**
   * One transaction of a task: the messages, by physical topic. Nothing: no-op. Throws
   * PartitionFenced if another replica has taken the partition over. Resolves with where each
   * topic-partition's records went (their first offset).
   */
  async commit(partition: number, messages: ReadonlyMap<string, Message[]>): Promise<RecordMetadata[]> {
    if (messages.size === 0) return [];
    const entry = this.tasks.get(partition);
    if (!entry || entry.fenced || !this.assigned(partition)) {
      throw new PartitionFenced(`partition ${partition} is not this replica's now`);
    }
    const task = await entry.opening;
    const producer = task.producers[task.count++ % task.producers.length]!;
    try {
      const transaction = await producer.transaction();
      try {
        const topicMessages = [...messages].map(([topic, list]) => ({ topic, messages: list }));
        const sent = await transaction.sendBatch({ topicMessages });
        await transaction.commit();
        return sent;
      } catch (err) {
        await transaction.abort().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      if (!isFenced(err)) throw err;
      // Its producers are spent: the partition's next assignment here opens new ones.
      entry.fenced = true;
      throw new PartitionFenced(`partition ${partition} was taken over by another replica: ${(err as Error).message}`);
    }
  }

  /** A task's entry while it opens; one that could not open is forgotten, to be opened anew. */
  private openTask(partition: number): TaskEntry {
    const entry: TaskEntry = { opening: this.open(partition), fenced: false };
    entry.opening.catch(() => {
      if (this.tasks.get(partition) === entry) this.tasks.delete(partition);
    });
    this.tasks.set(partition, entry);
    return entry;
  }

  private async open(partition: number): Promise<Task> {
    const producers = (['a', 'b'] as const).map((lane) =>
      this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        transactionalId: `${this.idPrefix}.task-${partition}.${lane}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // While the broker is away the processor waits for it rather than give up on the batch.
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 20, maxRetryTime: 5_000 },
      }),
    );
    try {
      await Promise.all(
        producers.map(async (producer) => {
          await producer.connect();
          // kafkajs initialises a transactional id with its first transaction: this one fences
          // the id's previous owner (and aborts what it left open) and sends nothing.
          await (await producer.transaction()).abort();
        }),
      );
    } catch (err) {
      await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
      throw err;
    }
    this.log.debug({ partition }, 'task opened: its transactional ids are ours');
    return { producers, count: 0 };
  }

  private async close(partition: number): Promise<void> {
    const entry = this.tasks.get(partition);
    if (!entry) return;
    this.tasks.delete(partition);
    const task = await entry.opening.catch(() => undefined);
    await Promise.all((task?.producers ?? []).map((p) => p.disconnect().catch(() => undefined)));
  }
}
