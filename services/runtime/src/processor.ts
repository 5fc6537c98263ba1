/**
 * The one Kafka runtime of the platform. A service gives it a pure handler
 * (message, state) -> (state writes, messages to send), and the processor:
 *
 * - consumes its topics in one consumer group, a batch at a time;
 * - validates every message; a message that can never be processed (bad JSON, wrong schema,
 *   a handler that throws on it) goes to `<topic>.dlt` with the reason and its original headers,
 *   and the batch carries on;
 * - commits, in ONE Kafka transaction per task (partition number), the messages to send, the
 *   state rows written and the consumed offsets: a crash at any instant replays the batch against
 *   the state as it was, so no effect is lost or doubled. A task's transactional ids belong to
 *   the partition (transactions.ts), so a replica that takes a partition over fences the one that
 *   had it. Batches that arrive while transactions commit share the next ones (group commit);
 * - retries a failed commit with backoff, undoing the state writes first;
 * - runs the service's periodic tick (saga timeouts, hold expiry) through the same path, on the
 *   partitions it owns (and, when the tick asks, only those whose input is processed to its end);
 * - follows the lookup tables a service reads but does not own (another service's state topic),
 *   and lets a handler ask for them to be caught up before it decides;
 * - traces each message in a consumer span (tracing.ts), child of the span that sent it, and
 *   each message it sends in a producer span, ended when the transaction commits;
 * - on SIGTERM, finishes the batch in hand, commits and leaves the group.
 *
 * What it does with others: the handler's contract (decision.ts), a transaction's content as it
 * is staged (staged-transaction.ts), the transactions themselves (transactions.ts), dead-letter
 * records (dead-letters.ts), outgoing records (outgoing.ts, shared with the Publisher), how far
 * the group has processed (consumer-progress.ts).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { ConsumerProgress } from './consumer-progress.js';
import { withContext, type Logger } from './context.js';
import type { Decision, Handler, Lookup, RowChange, Tick } from './decision.js';
import { EnvelopeCodec, headersToStrings, type AnyEnvelope } from './envelope.js';
import type { TopicNamer } from './kafka.js';
import { consumerLag, initialiseSeries, messagesConsumed, retries, transactionDuration } from './metrics.js';
import { CoPartitionedAssigner } from './co-partitioned-assigner.js';
import { DEFAULT_BACKOFF, retry, sleep, type BackoffPolicy } from './retry.js';
import { StagedTransaction, type StagingTarget } from './staged-transaction.js';
import { StateLog } from './state-log.js';
import type { StateTable } from './state-table.js';
import type { SagaTopic, ServiceContract } from './contract.js';
import { PartitionFenced, Transactions, type ConsumedOffset } from './transactions.js';
import { activeTraceparent, envelopeAttributes, inConsumerSpan, inTraceOf, traceIdOf } from './tracing.js';

export interface ProcessorOptions<V> {
  /** The service: its name, the topics it consumes, its state topic, its messages' schemas. */
  readonly contract: ServiceContract;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly namer: TopicNamer;
  readonly log: Logger;
  readonly table: StateTable<V>;
  readonly handle: Handler<V>;
  readonly tick?: Tick<V>;
  readonly lookups?: readonly Lookup[];
  /** Sees each committed transaction's row changes, once (metrics). */
  readonly onCommitted?: (changes: ReadonlyArray<RowChange<V>>) => void;
  readonly backoff?: BackoffPolicy;
  /** Consumer session timeout: how fast the group notices a replica that died. */
  readonly sessionTimeoutMs?: number;
  /** How long a handler that awaits its lookups may be asked again before it is told they are complete. */
  readonly lookupSettleMs?: number;
}

/** Work for the next transaction: a consumed batch, or a clock tick. */
type WorkItem<V> =
  | { readonly kind: 'batch'; readonly payload: EachBatchPayload }
  | { readonly kind: 'tick'; readonly tick: Tick<V>; readonly owns: (partition: number) => boolean };
type Work<V> = WorkItem<V> & { readonly done: { resolve: () => void; reject: (err: unknown) => void } };

/** What one task (partition number) has to do in the next transaction. */
interface TaskWork<V> {
  readonly batches: EachBatchPayload[];
  readonly ticks: Array<{ readonly tick: Tick<V>; readonly owns: (partition: number) => boolean }>;
}

/** How long, by default, the rows committed with a message may take to become readable in a lookup. */
export const DEFAULT_LOOKUP_SETTLE_MS = 2_000;

/** How many partitions' batches may wait for one transaction together. */
const PARTITIONS_IN_FLIGHT = 16;

export class Processor<V> {
  private readonly consumer: Consumer;
  private readonly transactions: Transactions;
  private readonly stateLog: StateLog<V>;
  private readonly lookupLogs: StateLog<unknown>[];
  private readonly progress: ConsumerProgress;
  private readonly groupId: string;
  private readonly backoff: BackoffPolicy;
  private readonly log: Logger;
  private readonly codec: EnvelopeCodec;
  private readonly staging: StagingTarget<V>;
  private readonly lookupSettleMs: number;
  /** Work waiting for the next transaction, and whether one is being committed. */
  private inbox: Array<Work<V>> = [];
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private owned = new Set<number>();
  /** The tasks of the current assignment opened (their previous owners fenced). */
  private tasksReady: Promise<void> = Promise.resolve();
  /** +1 per assignment: clock work prepared for an older one is dropped. */
  private assignment = 0;
  /** The assignment the state was last read to the end for (after its tasks were opened). */
  private caughtUpFor = -1;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private running = false;
  private caughtUpOnce = false;

  constructor(private readonly options: ProcessorOptions<V>) {
    const { kafka, namer, contract } = options;
    const service = contract.name;
    this.log = options.log;
    this.codec = new EnvelopeCodec(contract.payloads);
    this.lookupSettleMs = options.lookupSettleMs ?? DEFAULT_LOOKUP_SETTLE_MS;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.groupId = namer.id(service);
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      sessionTimeout: options.sessionTimeoutMs ?? 10_000,
      partitionAssigners: [CoPartitionedAssigner],
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 500,
    });
    this.transactions = new Transactions(kafka, namer.id(service), this.groupId, this.log);
    this.stateLog = new StateLog(kafka, options.admin, namer, contract.stateTopic, options.table, service, this.log);
    this.lookupLogs = (options.lookups ?? []).map(
      ({ topic, table }) => new StateLog(kafka, options.admin, namer, topic, table, `${service}.lookup`, this.log),
    );
    this.progress = new ConsumerProgress(this.consumer, options.admin, this.groupId);
    this.staging = {
      table: options.table,
      namer,
      stateTopic: contract.stateTopic,
      groupId: this.groupId,
      log: this.log,
    };
    initialiseSeries(contract.consumes);
  }

  /** True once the state is loaded and the consumer runs. */
  get ready(): boolean {
    return this.running && this.caughtUpOnce;
  }

  /**
   * True once the state (and the lookups) are restored from their topics: until then a read
   * would see part of the state, and an existing row look missing.
   */
  get restored(): boolean {
    return this.caughtUpOnce;
  }

  async start(): Promise<void> {
    const { namer, contract } = this.options;
    const logs = [this.stateLog, ...this.lookupLogs];
    await Promise.all(logs.map((l) => l.start()));
    await Promise.all(logs.map((l) => l.catchUp()));
    this.caughtUpOnce = true;
    this.log.info({ rows: this.options.table.size }, `state loaded from ${contract.stateTopic}`);

    const consumed = contract.consumes.map((t) => namer.physical(t));
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      this.owned = new Set(Object.values(payload.memberAssignment).flat());
      this.assignment++;
      // Before any work of the new partitions: their transactional ids become ours (fencing the
      // replica that had them), then the state is read to the end of what it committed.
      this.tasksReady = this.transactions.assign(this.owned);
      this.tasksReady.catch((err) => this.log.warn({ err }, 'could not open the tasks of the new partitions'));
      this.log.info({ partitions: [...this.owned].sort((a, b) => a - b) }, 'partitions assigned');
      // Clock work due on the new partitions (timeouts, expired holds) runs at once, not a period later.
      this.progress
        .assigned(consumed)
        .then(() => this.tickNow())
        .catch((err) => this.log.warn({ err }, 'could not read committed offsets'));
    });
    await this.consumer.connect();
    for (const topic of contract.consumes) {
      await this.consumer.subscribe({ topic: namer.physical(topic), fromBeginning: true });
    }
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Batches of several partitions arrive together and share one transaction.
      partitionsConsumedConcurrently: PARTITIONS_IN_FLIGHT,
      eachBatch: async (payload) => {
        if (payload.batch.isEmpty()) return;
        await this.submit({ kind: 'batch', payload });
        await payload.heartbeat();
      },
    });
    this.running = true;
    this.tickNow();
    const tick = this.options.tick;
    if (tick) this.tickTimer = setInterval(() => this.tickNow(), tick.everyMs);
  }

  /** Starts the tick unless one is under way. */
  private tickNow(): void {
    const tick = this.options.tick;
    if (!tick || this.ticking || !this.running || this.owned.size === 0) return;
    this.ticking = true;
    this.runTick(tick)
      .catch((err) => this.log.warn({ err }, 'tick failed; trying again at the next one'))
      .finally(() => (this.ticking = false));
  }

  /** Clock work, on the partitions this replica owns (and whose input is processed, if asked). */
  private async runTick(tick: Tick<V>): Promise<void> {
    const assignment = this.assignment;
    let eligible: ReadonlySet<number> = this.owned;
    for (const topic of tick.caughtUpOn ?? []) {
      eligible = await this.progress.caughtUp(this.options.namer.physical(topic), eligible);
    }
    if (assignment !== this.assignment) return;
    const owns = (partition: number) => assignment === this.assignment && eligible.has(partition);
    await this.submit({ kind: 'tick', tick, owns });
  }

  /** Graceful stop: the batches in hand are finished and committed, then the group is left. */
  async stop(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.running = false;
    await this.consumer.disconnect();
    await this.drained;
    await this.transactions.disconnect();
    await Promise.all([this.stateLog, ...this.lookupLogs].map((l) => l.stop()));
  }

  /** Queues work for the next transaction; resolves once it is committed. */
  private submit(work: WorkItem<V>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.inbox.push({ ...work, done: { resolve, reject } });
      if (!this.draining) this.drained = this.drain();
    });
  }

  /**
   * Group commit: while transactions commit, the work that arrives waits, and then all of it goes
   * into the next ones. Under load many batches share one commit per task; when idle, a batch is
   * committed at once.
   */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.inbox.length > 0) await this.commitGroup(this.inbox.splice(0, this.inbox.length));
    } finally {
      this.draining = false;
    }
  }

  /**
   * The state read to the end once per assignment, after its tasks are open: all that the
   * partitions' previous owners committed is in, and they can commit nothing more.
   */
  private async ensureCaughtUp(): Promise<void> {
    const assignment = this.assignment;
    if (this.caughtUpFor === assignment) return;
    await this.stateLog.catchUp();
    if (this.assignment === assignment) this.caughtUpFor = assignment;
  }

  /**
   * One transaction per task (partition number) of the group's work, committed side by side,
   * each by its task's producers. Settles every work item: a batch with its partition's
   * transaction, a tick once every partition it touched is done.
   */
  private async commitGroup(group: Work<V>[]): Promise<void> {
    try {
      await this.tasksReady;
      await this.ensureCaughtUp();
    } catch (err) {
      for (const work of group) work.done.reject(err);
      return;
    }
    const tasks = new Map<number, TaskWork<V>>();
    const taskOf = (partition: number) => {
      let task = tasks.get(partition);
      if (!task) tasks.set(partition, (task = { batches: [], ticks: [] }));
      return task;
    };
    for (const work of group) {
      if (work.kind === 'batch') taskOf(work.payload.batch.partition).batches.push(work.payload);
      else for (const p of this.owned) if (work.owns(p)) taskOf(p).ticks.push(work);
    }
    const outcome = new Map([...tasks].map(([partition, task]) => [partition, this.commitTask(partition, task)]));
    await Promise.all(
      group.map(async (work) => {
        const partitions =
          work.kind === 'batch' ? [work.payload.batch.partition] : [...tasks.keys()].filter((p) => work.owns(p));
        const results = await Promise.allSettled(partitions.map((p) => outcome.get(p)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) work.done.reject(failed.reason);
        else work.done.resolve();
      }),
    );
  }

  /** The transaction of one task: its batches and clock work, retried until it commits. */
  private async commitTask(partition: number, task: TaskWork<V>): Promise<void> {
    const started = process.hrtime.bigint();
    // The last message handled of each batch: its offset is committed and resolved.
    let handledUpTo = new Map<EachBatchPayload, KafkaMessage>();
    try {
      await retry(
        async () => {
          const pending = new StagedTransaction<V>(this.staging);
          handledUpTo = new Map();
          try {
            for (const { tick, owns } of task.ticks) {
              this.stageTick(tick, (p) => p === partition && owns(p), pending);
            }
            for (const payload of task.batches) {
              const { batch, isRunning, isStale } = payload;
              const topic = this.options.namer.logical(batch.topic) as SagaTopic;
              for (const message of batch.messages) {
                if (!isRunning() || isStale()) break;
                await this.processMessage(topic, partition, message, pending);
                handledUpTo.set(payload, message);
              }
            }
            await this.transactions.commit(
              partition,
              pending.messages,
              [...handledUpTo].map(([{ batch }, message]): ConsumedOffset => ({
                topic: batch.topic,
                partition,
                offset: String(Number(message.offset) + 1),
              })),
            );
          } catch (err) {
            pending.aborted(err);
            throw err;
          }
          this.options.table.commit(pending.keys);
          pending.committed();
          this.options.onCommitted?.(pending.changes);
        },
        this.backoff,
        (err, attempt, delayMs) => {
          retries.inc({ operation: 'commit' });
          this.log.warn({ err, attempt, delayMs, partition }, 'transaction failed; retrying');
        },
      );
    } catch (err) {
      if (!(err instanceof PartitionFenced)) throw err;
      // Its offsets stay unresolved: whoever owns the partition redoes this work from there.
      this.log.warn({ partition, err: err.message }, 'partition taken over by another replica: its work is dropped');
      if (this.transactions.assigned(partition)) {
        // Ours again in the latest assignment (a replica thawed after it lost it): its task is
        // opened anew and the state read to the end before the work is done again.
        this.tasksReady = Promise.all([this.tasksReady, this.transactions.reopen(partition)]).then(() => undefined);
        this.caughtUpFor = -1;
      }
      // Until the group has moved on, the batch comes back: not in a busy loop.
      await sleep(200);
      return;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    transactionDuration.observe(seconds);
    for (const [{ batch, resolveOffset }, message] of handledUpTo) {
      const topic = this.options.namer.logical(batch.topic);
      resolveOffset(message.offset);
      this.progress.processed(batch.topic, batch.partition, Number(message.offset) + 1);
      messagesConsumed.inc({ topic }, batch.messages.indexOf(message) + 1);
      consumerLag.set({ topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    }
  }

  private async processMessage(
    topic: SagaTopic,
    partition: number,
    message: KafkaMessage,
    pending: StagedTransaction<V>,
  ) {
    const headers = headersToStrings(message.headers);
    const record = {
      topic,
      destination: this.options.namer.physical(topic),
      key: message.key?.toString('utf8'),
      partition,
      offset: message.offset,
      consumerGroup: this.groupId,
    };
    await inConsumerSpan(record, headers, async (span) => {
      let envelope: AnyEnvelope;
      try {
        envelope = this.codec.decode(topic, message.value);
      } catch (err) {
        pending.deadLetter({ topic, partition, message, headers, kind: 'poison', error: err });
        return;
      }
      span.setAttributes(envelopeAttributes(envelope));
      const now = new Date();
      const traceparent = activeTraceparent();
      const context = {
        correlationId: envelope.correlationId,
        orderId: envelope.orderId,
        messageId: envelope.id,
        traceId: traceIdOf(traceparent),
      };
      await withContext(context, async () => {
        const decide = (lookupsCaughtUp: boolean): Decision<V> | undefined => {
          try {
            const handlerContext = { now, traceId: context.traceId, traceparent, lookupsCaughtUp };
            return this.options.handle(envelope, this.options.table, handlerContext);
          } catch (err) {
            // Handlers are pure: what throws once throws every time.
            pending.deadLetter({ topic, partition, message, headers, kind: 'handler-error', error: err });
            return undefined;
          }
        };
        let decision = decide(false);
        if (decision?.awaitLookups) {
          // Not caught up in time is transient: the whole group is retried.
          pending.lookupsCaughtUp ??= Promise.all(this.lookupLogs.map((l) => l.catchUp()));
          await pending.lookupsCaughtUp;
          decision = decide(false);
          // A transaction's markers reach its partitions one after the other: the row committed
          // with this message may become readable a moment after the message itself. So the
          // handler is asked again after fresh catch-ups, until LOOKUP_SETTLE_MS has passed;
          // only then is it told that what is still missing will not come. The time is the
          // group's, not each message's: a group of unknown orders waits it once.
          const settleBy = (pending.lookupsSettleBy ??= Date.now() + this.lookupSettleMs);
          for (let wait = 20; decision?.awaitLookups && Date.now() < settleBy; wait = Math.min(wait * 2, 500)) {
            await sleep(Math.min(wait, Math.max(0, settleBy - Date.now())));
            await Promise.all(this.lookupLogs.map((l) => l.catchUp()));
            decision = decide(false);
          }
          if (decision?.awaitLookups) decision = decide(true);
        }
        if (!decision) return;
        for (const effect of decision.effects ?? []) {
          try {
            await retry(
              () => effect.run(),
              this.backoff,
              (err, attempt) => {
                retries.inc({ operation: 'effect' });
                this.log.warn({ err: String(err), attempt }, `${effect.description} failed; retrying`);
              },
            );
          } catch (err) {
            pending.deadLetter({
              topic,
              partition,
              message,
              headers,
              kind: 'effect-failed',
              error: err,
              what: effect.description,
            });
          }
        }
        pending.stage(decision, () => partition, now);
      });
    });
  }

  /**
   * Timeouts and other clock work: sees only the rows of partitions this replica owns. Each of
   * its decisions continues the trace of the row it is about.
   */
  private stageTick(tick: Tick<V>, owns: (partition: number) => boolean, pending: StagedTransaction<V>): void {
    if (!this.running) return;
    const now = new Date();
    const partitionOf = (key: string) => {
      const partition = this.options.table.row(key)?.partition;
      if (partition === undefined) throw new Error(`tick wrote key ${key}, which has no row`);
      return partition;
    };
    for (const decision of tick.run(this.options.table, (p) => this.owned.has(p) && owns(p), now)) {
      inTraceOf(decision.traceparent, () => pending.stage(decision, partitionOf, now));
    }
  }
}
