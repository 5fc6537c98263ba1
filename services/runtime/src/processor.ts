/**
 * The one Kafka runtime of the platform. A service gives it a pure handler
 * (message, state) -> (state writes, messages to send), and the processor:
 *
 * - consumes its topics in one consumer group, a batch at a time;
 * - validates every message; a message that can never be processed (bad JSON, wrong schema,
 *   a handler that throws on it) goes to `<topic>.dlt` with the reason and its original headers,
 *   and the batch carries on;
 * - commits, in ONE Kafka transaction per batch, the messages to send, the state rows written
 *   and the consumed offsets: a crash at any instant replays the batch against the state as it
 *   was, so no effect is lost or doubled;
 * - retries a failed commit with backoff, undoing the batch's state writes first;
 * - runs the service's periodic tick (saga timeouts) through the same path;
 * - on SIGTERM, finishes the batch in hand, commits and leaves the group.
 */
import { Partitioners, type Admin, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import { currentContext, withContext, type Logger } from './context.js';
import { decode, encode, headersToStrings, PoisonMessageError, type Outgoing } from './envelope.js';
import type { TopicNamer } from './kafka.js';
import type { AnyEnvelope } from './messages.js';
import { batchDuration, consumerLag, deadLetters, messagesConsumed, messagesProduced, retries } from './metrics.js';
import { DEFAULT_BACKOFF, retry, type BackoffPolicy } from './retry.js';
import { StateLog, type StoredRow } from './state-log.js';
import type { StateTable, StateView } from './state-table.js';
import { deadLetterTopicOf, topicsConsumedBy, type SagaTopic, type ServiceName, type StateTopic } from './topics.js';
import { inConsumerSpan, traceHeaders, traceIdOf, TRACEPARENT } from './tracing.js';

/** A side effect outside Kafka (a webhook call): run before the commit, at least once. */
export interface Effect {
  readonly description: string;
  run(): Promise<void>;
}

/** What a handler decides. */
export interface Decision<V> {
  readonly put?: ReadonlyArray<readonly [key: string, value: V]>;
  readonly send?: ReadonlyArray<Outgoing>;
  readonly effects?: ReadonlyArray<Effect>;
}

export interface HandlerContext {
  readonly now: Date;
  /** Trace id of the message being handled, when it carries one. */
  readonly traceId?: string;
}

export type Handler<V> = (message: AnyEnvelope, state: StateView<V>, context: HandlerContext) => Decision<V>;

/** Work not started by a message: it sees only the rows of partitions this replica owns. */
export interface Tick<V> {
  readonly everyMs: number;
  run(state: StateView<V>, owns: (partition: number) => boolean, now: Date): Decision<V>;
}

export interface ProcessorOptions<V> {
  readonly service: ServiceName;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly namer: TopicNamer;
  readonly instanceId: string;
  readonly log: Logger;
  readonly stateTopic: StateTopic;
  readonly table: StateTable<V>;
  readonly handle: Handler<V>;
  readonly tick?: Tick<V>;
  readonly backoff?: BackoffPolicy;
  /** Consumer session timeout: how fast the group notices a replica that died. */
  readonly sessionTimeoutMs?: number;
}

/** A batch (or tick) in the making: undone as a whole if its transaction fails. */
interface Pending {
  readonly messages: Map<string, Message[]>;
  readonly undo: Array<() => void>;
  /** Counted in metrics once committed. */
  readonly produced: SagaTopic[];
  readonly deadLettered: Array<{ topic: SagaTopic; kind: DeadLetterKind }>;
}

type DeadLetterKind = 'poison' | 'handler-error' | 'effect-failed';

const newPending = (): Pending => ({ messages: new Map(), undo: [], produced: [], deadLettered: [] });

export class Processor<V> {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly stateLog: StateLog<V>;
  private readonly groupId: string;
  private readonly backoff: BackoffPolicy;
  private readonly log: Logger;
  /** Batches and ticks never overlap: they share the state table. */
  private queue: Promise<unknown> = Promise.resolve();
  private owned = new Set<number>();
  private needsCatchUp = true;
  private tickTimer: NodeJS.Timeout | undefined;
  private running = false;
  private caughtUpOnce = false;

  constructor(private readonly options: ProcessorOptions<V>) {
    const { kafka, namer, service, instanceId } = options;
    this.log = options.log;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.groupId = namer.id(service);
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      sessionTimeout: options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 500,
    });
    // Stable per replica: a restarted replica fences its dead predecessor's open transaction.
    this.producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      transactionalId: namer.id(`${service}.${instanceId}`),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // While the broker is away the processor waits for it rather than give up on the batch.
      // A transaction begun right after a commit gets CONCURRENT_TRANSACTIONS until the coordinator
      // has finished the last one: retry that quickly (the 300 ms default halves throughput).
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 20, maxRetryTime: 5_000 },
    });
    this.stateLog = new StateLog(kafka, options.admin, namer, options.stateTopic, options.table, service, this.log);
  }

  /** True once the state is loaded and the consumer runs. */
  get ready(): boolean {
    return this.running && this.caughtUpOnce;
  }

  async start(): Promise<void> {
    const { namer, service } = this.options;
    await this.producer.connect();
    await this.stateLog.start();
    await this.stateLog.catchUp();
    this.caughtUpOnce = true;
    this.log.info({ rows: this.options.table.size }, `state loaded from ${this.options.stateTopic}`);

    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.owned = new Set(Object.values(payload.memberAssignment).flat());
      this.needsCatchUp = true;
      this.log.info({ partitions: [...this.owned].sort((a, b) => a - b) }, 'partitions assigned');
    });
    await this.consumer.connect();
    for (const topic of topicsConsumedBy(service)) {
      await this.consumer.subscribe({ topic: namer.physical(topic), fromBeginning: true });
    }
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.serially(() => this.processBatch(payload)),
    });
    this.running = true;
    const tick = this.options.tick;
    if (tick) {
      this.tickTimer = setInterval(() => {
        void this.serially(() => this.runTick(tick)).catch((err) => this.log.error({ err }, 'tick failed'));
      }, tick.everyMs);
    }
  }

  /** Graceful stop: the batch in hand is finished and committed, then the group is left. */
  async stop(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.running = false;
    await this.consumer.disconnect();
    await this.queue.catch(() => undefined);
    await this.producer.disconnect();
    await this.stateLog.stop();
  }

  private serially<R>(work: () => Promise<R>): Promise<R> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async ensureCaughtUp(): Promise<void> {
    if (!this.needsCatchUp) return;
    await this.stateLog.catchUp();
    this.needsCatchUp = false;
  }

  private async processBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    await this.ensureCaughtUp();
    const topic = this.options.namer.logical(batch.topic) as SagaTopic;
    const started = process.hrtime.bigint();
    let processedUpTo: KafkaMessage | undefined;

    await retry(
      async () => {
        const pending = newPending();
        processedUpTo = undefined;
        try {
          for (const message of batch.messages) {
            if (!isRunning() || isStale()) break;
            await this.processMessage(topic, batch.partition, message, pending);
            processedUpTo = message;
          }
          if (!processedUpTo) return;
          await this.commit(pending, {
            topic: batch.topic,
            partition: batch.partition,
            offset: String(Number(processedUpTo.offset) + 1),
          });
        } catch (err) {
          for (const undo of pending.undo.reverse()) undo();
          throw err;
        }
        this.options.table.commit();
        messagesConsumed.inc({ topic }, batch.messages.indexOf(processedUpTo) + 1);
        this.countCommitted(pending);
      },
      this.backoff,
      (err, attempt, delayMs) => {
        retries.inc({ operation: 'batch-commit' });
        this.log.warn({ err, attempt, delayMs, topic, partition: batch.partition }, 'batch commit failed; retrying');
      },
    );
    if (processedUpTo) resolveOffset(processedUpTo.offset);
    consumerLag.set({ topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    batchDuration.observe({ topic }, Number(process.hrtime.bigint() - started) / 1e9);
    await heartbeat();
  }

  private async processMessage(topic: SagaTopic, partition: number, message: KafkaMessage, pending: Pending) {
    const headers = headersToStrings(message.headers);
    let envelope: AnyEnvelope;
    try {
      envelope = decode(topic, message.value);
    } catch (err) {
      this.deadLetter(topic, partition, message, headers, 'poison', err, pending);
      return;
    }
    const traceparent = headers[TRACEPARENT];
    const context = {
      correlationId: envelope.correlationId,
      orderId: envelope.orderId,
      messageId: envelope.id,
      traceId: traceIdOf(traceparent),
    };
    await withContext(context, () =>
      inConsumerSpan(`${topic} process`, headers, async () => {
        let decision: Decision<V>;
        try {
          decision = this.options.handle(envelope, this.options.table, { now: new Date(), traceId: context.traceId });
        } catch (err) {
          // Handlers are pure: what throws once throws every time.
          this.deadLetter(topic, partition, message, headers, 'handler-error', err, pending);
          return;
        }
        for (const effect of decision.effects ?? []) {
          try {
            await retry(() => effect.run(), this.backoff, (err, attempt) => {
              retries.inc({ operation: 'effect' });
              this.log.warn({ err: String(err), attempt }, `${effect.description} failed; retrying`);
            });
          } catch (err) {
            this.deadLetter(topic, partition, message, headers, 'effect-failed', err, pending, effect.description);
          }
        }
        this.stage(decision, () => partition, pending, traceparent);
      }),
    );
  }

  private async runTick(tick: Tick<V>): Promise<void> {
    if (!this.running || this.owned.size === 0) return;
    await this.ensureCaughtUp();
    const owned = this.owned;
    const decision = tick.run(this.options.table, (p) => owned.has(p), new Date());
    if (!decision.put?.length && !decision.send?.length) return;
    const partitionOf = (key: string) => {
      const partition = this.options.table.row(key)?.partition;
      if (partition === undefined) throw new Error(`tick wrote key ${key}, which has no row`);
      return partition;
    };
    await retry(
      async () => {
        const pending = newPending();
        try {
          this.stage(decision, partitionOf, pending, undefined);
          await this.commit(pending);
        } catch (err) {
          for (const undo of pending.undo.reverse()) undo();
          throw err;
        }
        this.options.table.commit();
        this.countCommitted(pending);
      },
      this.backoff,
      (err, attempt) => {
        retries.inc({ operation: 'tick-commit' });
        this.log.warn({ err, attempt }, 'tick commit failed; retrying');
      },
    );
  }

  /** Applies a decision to the table (undoably) and queues what it sends. */
  private stage(
    decision: Decision<V>,
    partitionOf: (key: string) => number,
    pending: Pending,
    traceparent: string | undefined,
  ): void {
    const { namer, stateTopic, table } = this.options;
    for (const [key, value] of decision.put ?? []) {
      const { row, undo } = table.write(key, value, partitionOf(key));
      pending.undo.push(undo);
      const stored: StoredRow<V> = { rev: row.rev, value: row.value };
      this.queueMessage(pending, namer.physical(stateTopic), {
        key,
        partition: row.partition,
        value: JSON.stringify(stored),
      });
    }
    for (const out of decision.send ?? []) {
      this.queueMessage(pending, namer.physical(out.topic), {
        key: out.envelope.orderId,
        value: encode(out.envelope),
        headers: {
          ...traceHeaders(traceparent),
          'message-id': out.envelope.id,
          'message-type': out.envelope.type,
          'correlation-id': out.envelope.correlationId,
        },
      });
      pending.produced.push(out.topic);
    }
  }

  private countCommitted(pending: Pending): void {
    for (const topic of pending.produced) messagesProduced.inc({ topic });
    for (const { topic, kind } of pending.deadLettered) deadLetters.inc({ topic, kind });
  }

  private deadLetter(
    topic: SagaTopic,
    partition: number,
    message: KafkaMessage,
    headers: Record<string, string>,
    kind: DeadLetterKind,
    error: unknown,
    pending: Pending,
    what?: string,
  ): void {
    const reason = `${what ? `${what}: ` : ''}${error instanceof Error ? error.message : String(error)}`;
    const dlt = deadLetterTopicOf(topic);
    this.log.warn(
      { ...currentContext(), topic, partition, offset: message.offset, kind, reason, poison: error instanceof PoisonMessageError },
      `message dead-lettered to ${dlt}`,
    );
    this.queueMessage(pending, this.options.namer.physical(dlt), {
      key: message.key,
      value: message.value,
      headers: {
        ...headers,
        'dlt-reason': reason,
        'dlt-kind': kind,
        'dlt-topic': topic,
        'dlt-partition': String(partition),
        'dlt-offset': message.offset,
        'dlt-group': this.groupId,
        'dlt-at': new Date().toISOString(),
      },
    });
    pending.deadLettered.push({ topic, kind });
  }

  private queueMessage(pending: Pending, topic: string, message: Message): void {
    const list = pending.messages.get(topic);
    if (list) list.push(message);
    else pending.messages.set(topic, [message]);
  }

  /** One transaction: everything the batch sends, its state rows, and (for batches) its offsets. */
  private async commit(pending: Pending, offsets?: { topic: string; partition: number; offset: string }): Promise<void> {
    const transaction = await this.producer.transaction();
    try {
      const topicMessages = [...pending.messages].map(([topic, messages]) => ({ topic, messages }));
      if (topicMessages.length > 0) await transaction.sendBatch({ topicMessages });
      if (offsets) {
        await transaction.sendOffsets({
          consumerGroupId: this.groupId,
          topics: [{ topic: offsets.topic, partitions: [{ partition: offsets.partition, offset: offsets.offset }] }],
        });
      }
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch(() => undefined);
      throw err;
    }
  }
}
