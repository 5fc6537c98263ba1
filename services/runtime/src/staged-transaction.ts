/**
 * One transaction in the making: what a group of batches (or a tick) decided, staged until it
 * commits. Each decision writes its rows to the table (undoably) and queues the state records and
 * the messages it sends, each message in a producer span; dead letters are queued the same way.
 * If the transaction aborts, every write is undone and the spans end in error; once it commits,
 * what it sent is counted and the spans end.
 */
import type { Span } from '@opentelemetry/api';
import type { Message } from 'kafkajs';
import type { Logger } from './context.js';
import type { SagaTopic, StateTopic } from './contract.js';
import { deadLetterRecord, type Unprocessable } from './dead-letters.js';
import type { Decision, RowChange } from './decision.js';
import type { TopicNamer } from './kafka.js';
import { deadLetters, messagesProduced, type DeadLetterKind } from './metrics.js';
import { outgoingRecord } from './outgoing.js';
import { consumedRecord, type StoredRow } from './changelog.js';
import type { Consumed } from './row-store.js';
import type { StateTable } from './state-table.js';
import { endSpans, inWorkSpan } from './tracing.js';

export interface StagingTarget<V> {
  readonly table: StateTable<V>;
  readonly namer: TopicNamer;
  readonly stateTopic: StateTopic;
  /** The consumer group, named in dead letters. */
  readonly groupId: string;
  readonly log: Logger;
}

export class StagedTransaction<V> {
  /** The records to produce, by physical topic. */
  readonly messages = new Map<string, Message[]>();
  /** The row changes, for those who watch commits (metrics). */
  readonly changes: Array<RowChange<V>> = [];
  /** The keys of the rows written, which become readable once it commits. */
  get keys(): string[] {
    return this.changes.map((c) => c.key);
  }
  /**
   * The lookups caught up to what was committed once this work was fetched: one catch-up serves
   * every message of the group that asks for one.
   */
  lookupsCaughtUp?: Promise<unknown>;
  /** Until when (epoch ms) a handler awaiting its lookups is asked again, for the whole group. */
  lookupsSettleBy?: number;
  /** Where each key's state record is queued: a later write of the key in this transaction replaces it. */
  private readonly stateRecords = new Map<string, Message>();
  private readonly undo: Array<() => void> = [];
  private readonly produced: Array<{ topic: SagaTopic; span: Span }> = [];
  private readonly deadLettered: Array<{ topic: SagaTopic; kind: DeadLetterKind }> = [];

  constructor(private readonly target: StagingTarget<V>) {}

  /** Stages a decision; in the decision's own span when it has one, started when its work did. */
  stage(decision: Decision<V>, partitionOf: (key: string) => number, startedAt: Date): void {
    if (decision.span) inWorkSpan(decision.span, startedAt, () => this.queueDecision(decision, partitionOf));
    else this.queueDecision(decision, partitionOf);
  }

  /** How far the partition's input is processed once this commits: on the state topic, with the rows. */
  consumed(partition: number, consumed: Consumed): void {
    this.queue(this.target.namer.physical(this.target.stateTopic), consumedRecord(partition, consumed));
  }

  deadLetter(unprocessable: Unprocessable): void {
    const { topic, message } = deadLetterRecord(unprocessable, this.target.groupId, this.target.log);
    this.queue(this.target.namer.physical(topic), message);
    this.deadLettered.push({ topic: unprocessable.topic, kind: unprocessable.kind });
  }

  /** The transaction failed: the table as it was, the spans ended with the error. */
  aborted(err: unknown): void {
    for (const undo of this.undo.reverse()) undo();
    endSpans(
      this.produced.map((p) => p.span),
      err,
    );
  }

  /** The transaction committed: what it sent and dead-lettered is counted, the spans end. */
  committed(): void {
    for (const { topic } of this.produced) messagesProduced.inc({ topic });
    for (const { topic, kind } of this.deadLettered) deadLetters.inc({ topic, kind });
    endSpans(this.produced.map((p) => p.span));
  }

  private queueDecision(decision: Decision<V>, partitionOf: (key: string) => number): void {
    const { namer, stateTopic, table } = this.target;
    const writes: Array<readonly [string, V | undefined]> = [
      ...(decision.put ?? []),
      ...(decision.delete ?? []).map((key) => [key, undefined] as const),
    ];
    for (const [key, value] of writes) {
      const before = table.get(key);
      const partition = partitionOf(key);
      const { row, undo } = table.write(key, value, partition);
      this.undo.push(undo);
      this.changes.push({ key, before, after: value });
      const stored: StoredRow<V> | undefined = row && { rev: row.rev, value: row.value };
      const encoded = stored ? JSON.stringify(stored) : null;
      // One record per key per transaction, as Kafka Streams' record cache does: what the key
      // was in between is never read back (a restore, a lookup, want where it ended), and a
      // SKU's units or a customer's credit change with every saga of the batch.
      const queued = this.stateRecords.get(key);
      if (queued) queued.value = encoded;
      else {
        const record: Message = { key, partition, value: encoded };
        this.stateRecords.set(key, record);
        this.queue(namer.physical(stateTopic), record);
      }
    }
    for (const out of decision.send ?? []) {
      const destination = namer.physical(out.topic);
      const { message, span } = outgoingRecord(out, destination);
      this.queue(destination, message);
      this.produced.push({ topic: out.topic, span });
    }
  }

  private queue(topic: string, message: Message): void {
    const list = this.messages.get(topic);
    if (list) list.push(message);
    else this.messages.set(topic, [message]);
  }
}
