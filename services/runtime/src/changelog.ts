/**
 * Reads a compacted state topic (a changelog) into a StateTable, partition by partition, from the
 * offset the table's store already reflects: a restarted replica reads only what changed since
 * its last commit. A reader of another service's state (a lookup, the controller) keeps following
 * it. A service's own state is read to its end and no further (`follow: false`), as Kafka
 * Streams' active tasks do: once this replica owns the partitions and has fenced their previous
 * owner, only its own commits land there, and they go to the store directly, with the offsets
 * they reach. Reading them back would cost a fetch per commit, on both sides of the wire.
 *
 * Besides the rows, each partition of a state topic carries how far its service has processed
 * its input (a `Consumed` record, under the key `@consumed`, written in the same transaction as
 * the rows it led to): the table's store keeps it beside its position, and it is no row.
 *
 * A position the topic cannot have (past its end, or before its start: the topic was recreated
 * or truncated) means the store is not a copy of this changelog: it is cleared and read again.
 * Progress (records, offsets, rate, time left) is logged while a read takes more than a moment,
 * and exported as metrics.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage, Message } from 'kafkajs';
import type { Logger } from './context.js';
import { restoreRecordsRemaining, restoredRecords } from './metrics.js';
import { DEFAULT_BACKOFF, retry, sleep } from './retry.js';
import type { Consumed, RowWrite } from './row-store.js';
import type { StateTable } from './state-table.js';

/** How a row is stored in a state topic (key: the row's key; partition: the row's partition). */
export interface StoredRow<V> {
  readonly rev: number;
  readonly value: V;
}

/** Keys the runtime keeps for itself on a state topic: no row's (the processor refuses a handler's). */
export const isRuntimeKey = (key: string) => key.startsWith('@');

/** The key of a state topic's `Consumed` records, one per partition (compaction keeps the last). */
const CONSUMED_KEY = '@consumed';
/** The header that marks a `Consumed` record (the key alone could be taken for a row's). */
const CONSUMED_HEADER = 'ordersaga-consumed';

/** A state topic's record of how far its partition's input is processed. */
export function consumedRecord(partition: number, consumed: Consumed): Message {
  return { key: CONSUMED_KEY, partition, value: JSON.stringify(consumed), headers: { [CONSUMED_HEADER]: '1' } };
}

/** The `Consumed` a state topic's record carries, if it is one. */
export function consumedOf(message: KafkaMessage): Consumed | undefined {
  if (message.headers?.[CONSUMED_HEADER] === undefined || message.value === null) return undefined;
  return JSON.parse(message.value.toString('utf8')) as Consumed;
}

/** A row of the changelog as the table takes it: the row, or its deletion. */
export function rowOf<V>(message: KafkaMessage, partition: number): RowWrite<V> {
  const key = message.key?.toString('utf8') ?? '';
  if (message.value === null) return [key, undefined, { partition, at: Number(message.timestamp) }];
  const stored = JSON.parse(message.value.toString('utf8')) as StoredRow<V>;
  return [key, { rev: stored.rev, partition, value: stored.value }];
}

/** How far a read of partitions has come, while it runs. */
export interface ReadProgress {
  readonly topic: string;
  readonly partitions: readonly number[];
  readonly done: number;
  readonly total: number;
  readonly perSecond: number;
  readonly etaSeconds: number | null;
}

/** How often, and how long apart, a position past the topic's end is looked at again. */
const OUTSIDE_RECHECKS = 3;
const OUTSIDE_RECHECK_MS = 500;

/** How often a long read says how far it is. */
const PROGRESS_EVERY_MS = 2_000;

interface Target {
  /** Where this read of the partition started, and the end it must reach. */
  readonly from: number;
  readonly end: number;
}

export class Changelog<V> {
  private readonly consumer: Consumer;
  /** The partitions read now. */
  private wanted = new Set<number>();
  /** Per partition read, the offset its reading has reached (records and markers alike). */
  private readonly readUpTo = new Map<number, number>();
  /** Reads one after the other: an assignment's waits for the one before it. */
  private reading: Promise<void> = Promise.resolve();
  /** The read under way, if any. */
  progress: ReadProgress | undefined;
  /** Whether a read is under way: a reader that does not follow fetches only then. */
  private active = false;

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    /** The topic's physical name. */
    private readonly topic: string,
    private readonly table: StateTable<V>,
    groupPrefix: string,
    private readonly log: Logger,
    /** Whether it reads on past the end a read reached (false: only while read() runs). */
    private readonly follow = true,
  ) {
    this.consumer = kafka.consumer({
      // A group of its own, of one member, so it is given every partition; nothing is committed.
      groupId: `${groupPrefix}.${randomUUID()}`,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      // A fetch waits this long when there is nothing new; a stop waits for the fetch.
      maxWaitTimeInMs: 500,
    });
    // Batches of markers or aborted records only reach no handler: their end still counts as read.
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === this.topic) this.reached(payload.partition, Number(payload.lastOffset) + 1);
    });
    // What is paused and where each partition reads live in the consumer's group, which a crash
    // (the coordinator still loading, say) replaces by a new one: every join is steered again.
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => this.steer());
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    // From the end: nothing is read until a partition is asked for, from its stored position.
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: false });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const partition = batch.partition;
        const position = this.readUpTo.get(partition);
        // A batch fetched from elsewhere than where this read stands (before a seek) is not applied.
        if (
          !this.wanted.has(partition) ||
          position === undefined ||
          Number((batch as { fetchedOffset?: string }).fetchedOffset) > position
        )
          return;
        const stored = this.table.positions().get(partition) ?? 0;
        const writes: RowWrite<V>[] = [];
        let consumed: Consumed | undefined;
        let next = stored;
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          if (offset < stored) continue;
          const processed = consumedOf(message);
          if (processed) consumed = processed;
          else writes.push(rowOf<V>(message, partition));
          next = offset + 1;
        }
        if (next > stored) {
          this.table.applyFromLog(writes, new Map([[partition, next]]), consumed && new Map([[partition, consumed]]));
          restoredRecords.inc({ topic: this.topic }, writes.length);
        }
        this.reached(partition, next);
      },
    });
  }

  /**
   * Reads these partitions (every partition of the topic when none are named, and no others) to
   * the end of what is committed now, and goes on.
   */
  read(partitions?: ReadonlySet<number>, timeoutMs = 300_000): Promise<void> {
    const run = this.reading.catch(() => undefined).then(() => this.readNow(partitions, timeoutMs));
    this.reading = run;
    return run;
  }

  /**
   * Deletes the partition's rows from the table's store, unless it is read again by then: in
   * turn with the reads, so that none writes rows of the partition while they are deleted.
   */
  forget(partition: number): Promise<void> {
    const run = this.reading
      .catch(() => undefined)
      .then(async () => {
        if (this.wanted.has(partition)) return;
        const started = Date.now();
        await this.table.dropPartition(partition);
        this.log.info(
          { topic: this.topic, partition, seconds: (Date.now() - started) / 1000 },
          `rows of ${this.topic} partition ${partition} deleted from the store: another replica keeps them`,
        );
      });
    this.reading = run;
    return run;
  }

  /** Resolves once the partitions followed have read everything committed before this call. */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    await this.reading;
    const ends = await this.ends();
    const lagging = () => [...this.wanted].filter((p) => (this.readUpTo.get(p) ?? 0) < (ends.get(p)?.end ?? 0));
    const deadline = Date.now() + timeoutMs;
    for (let behind = lagging(); behind.length > 0; behind = lagging()) {
      if (Date.now() > deadline) {
        throw new Error(`${this.topic} not read to its end after ${timeoutMs} ms (partitions ${behind.join(',')})`);
      }
      await sleep(10);
    }
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }

  private reached(partition: number, next: number): void {
    const position = this.readUpTo.get(partition);
    if (this.wanted.has(partition) && position !== undefined && next > position) this.readUpTo.set(partition, next);
  }

  /** Per partition: its first offset and its read-committed end. */
  private async ends(): Promise<Map<number, { low: number; end: number }>> {
    const offsets = await retry(() => this.admin.fetchTopicOffsets(this.topic), DEFAULT_BACKOFF);
    return new Map(offsets.map((o) => [o.partition, { low: Number(o.low), end: Number(o.offset) }]));
  }

  private async readNow(named: ReadonlySet<number> | undefined, timeoutMs: number): Promise<void> {
    // The store's positions before the ends: a commit of this replica's own that lands in
    // between would put a position past an end read before it.
    const stored = new Map(this.table.positions());
    let ends = await this.ends();
    const partitions = named ?? new Set(ends.keys());
    for (const p of this.wanted) if (!partitions.has(p)) this.readUpTo.delete(p);
    this.wanted = new Set(partitions);
    if (partitions.size === 0) {
      this.steer();
      return;
    }

    const outside = () =>
      [...partitions].filter((p) => {
        const at = stored.get(p);
        const range = ends.get(p);
        return at !== undefined && range !== undefined && (at > range.end || at < range.low);
      });
    let impossible = outside();
    // The end is what is committed: a transaction of this replica's that has just committed is
    // not in it until the broker has written its markers, just after answering the commit.
    for (let attempt = 1; impossible.length > 0 && attempt <= OUTSIDE_RECHECKS; attempt++) {
      await sleep(OUTSIDE_RECHECK_MS);
      ends = await this.ends();
      impossible = outside();
    }
    if (impossible.length > 0) {
      this.log.warn(
        { topic: this.topic, partitions: impossible },
        `the state store is not a copy of ${this.topic} (positions outside the topic): it is read again from the start`,
      );
      this.table.clear();
    }
    const targets = new Map<number, Target>();
    for (const p of partitions) {
      const range = ends.get(p) ?? { low: 0, end: 0 };
      const from = this.table.positions().get(p) ?? range.low;
      targets.set(p, { from, end: range.end });
      this.readUpTo.set(p, from);
    }
    this.active = true;
    try {
      this.steer();
      await this.untilRead(targets, timeoutMs);
    } finally {
      this.active = false;
      // Not following: paused where it stands, and read on by the next read().
      if (!this.follow) this.steer();
    }
  }

  /**
   * Points the consumer at what is read: every partition wanted from where its read stands (while
   * a read runs, or always when following), the others paused. Until its group has joined (at the
   * start, or while it restarts after a crash) there is nothing to steer: the join does it.
   */
  private steer(): void {
    try {
      this.consumer.pause([{ topic: this.topic }]);
      for (const [partition, offset] of this.readUpTo) {
        this.consumer.seek({ topic: this.topic, partition, offset: String(offset) });
      }
      const reading = this.follow || this.active;
      if (reading && this.wanted.size > 0) this.consumer.resume([{ topic: this.topic, partitions: [...this.wanted] }]);
    } catch (err) {
      this.log.debug({ err, topic: this.topic }, 'state reader not joined yet: steered when it joins');
    }
  }

  /** Waits for every target's end, saying how far it is while that takes time. */
  private async untilRead(targets: ReadonlyMap<number, Target>, timeoutMs: number): Promise<void> {
    const total = [...targets.values()].reduce((sum, t) => sum + Math.max(0, t.end - t.from), 0);
    const remaining = () =>
      [...targets].reduce((sum, [p, t]) => sum + Math.max(0, t.end - Math.max(t.from, this.readUpTo.get(p) ?? 0)), 0);
    const partitions = [...targets.keys()].sort((a, b) => a - b);
    const started = Date.now();
    let reported = started;
    for (let left = remaining(); left > 0; left = remaining()) {
      restoreRecordsRemaining.set({ topic: this.topic }, left);
      const now = Date.now();
      if (now - started > timeoutMs) {
        throw new Error(`${this.topic}: ${left} of ${total} offsets still unread after ${timeoutMs} ms`);
      }
      const rate = (total - left) / Math.max(0.001, (now - started) / 1000);
      const etaSeconds = rate > 0 ? Math.ceil(left / rate) : null;
      this.progress = {
        topic: this.topic,
        partitions,
        done: total - left,
        total,
        perSecond: Math.round(rate),
        etaSeconds,
      };
      if (now - reported >= PROGRESS_EVERY_MS) {
        reported = now;
        const offsets = Object.fromEntries([...targets].map(([p, t]) => [p, `${this.readUpTo.get(p)}/${t.end}`]));
        this.log.info(
          { ...this.progress, offsets },
          `reading ${this.topic}: ${total - left} of ${total} offsets (${Math.round(rate)}/s, ` +
            `${etaSeconds === null ? 'starting' : `about ${etaSeconds} s left`})`,
        );
      }
      await sleep(10);
    }
    this.progress = undefined;
    restoreRecordsRemaining.set({ topic: this.topic }, 0);
    const seconds = (Date.now() - started) / 1000;
    if (total > 0) {
      this.log.info(
        { topic: this.topic, partitions, offsets: total, seconds, rows: this.table.size },
        `read ${this.topic}: ${total} offsets of partitions ${partitions.join(',')} in ${seconds.toFixed(1)} s`,
      );
    }
  }
}
