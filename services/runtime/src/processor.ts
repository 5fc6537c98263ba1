/**
 * The one Kafka runtime of the platform. A service gives it a pure handler
 * (message, state) -> (state writes, messages to send), and the processor:
 *
 * - consumes its topics in one consumer group, a batch at a time;
 * - validates every message; a message that can never be processed (bad JSON, wrong schema,
 *   a handler that throws on it) goes to `<topic>.dlt` with the reason and its original headers,
 *   and the batch carries on;
 * - commits, in ONE Kafka transaction per task (partition number), the messages to send, the
 *   state rows written and how far the input is processed (a record of the state topic, not the
 *   group's offsets: transactions.ts): a crash at any instant replays the batch against the state
 *   as it was, so no effect is lost or doubled, and what the state says is processed is skipped.
 *   Once committed, the rows go to the local store with the state topic's offsets they reach. The
 *   group's offsets follow outside the transactions (GROUP_OFFSETS_EVERY_MS), for the tools that show lag;
 * - keeps the state of the partitions it owns only: a partition just assigned is first restored
 *   from the state topic, from where the local store stands (changelog.ts), and then served
 *   (owners.ts: the other replicas forward its reads here); a partition given up leaves memory at
 *   once and the store after STATE_CLEANUP_DELAY, unless it comes back. A task's transactional ids belong to
 *   the partition (transactions.ts), so a replica that takes a partition over fences the one that
 *   had it. Batches that arrive while transactions commit share the next ones (group commit);
 * - retries a failed commit with backoff, undoing the state writes first;
 * - runs the service's periodic ticks (saga timeouts, hold expiry, retention) through the same
 *   path, on the partitions it owns (and, when a tick asks, only those whose input is processed
 *   to its end);
 * - dead-letters a message older than the state's retention (kind `expired`): what it would act
 *   on may be retired, and a late duplicate must not be taken for new work;
 * - follows, for the partitions it owns, the lookup tables a service reads but does not own
 *   (another service's state topic), and lets a handler ask for them to be caught up before it
 *   decides;
 * - traces each message in a consumer span (tracing.ts), child of the span that sent it, and
 *   each message it sends in a producer span, ended when the transaction commits;
 * - on SIGTERM, finishes the batch in hand, commits and leaves the group.
 *
 * What it does with others: the handler's contract (decision.ts), a transaction's content as it
 * is staged (staged-transaction.ts), the transactions themselves (transactions.ts), dead-letter
 * records (dead-letters.ts), outgoing records (outgoing.ts, shared with the Publisher), how far
 * the group has processed (consumer-progress.ts).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, RecordMetadata } from 'kafkajs';
import { ConsumerProgress } from './consumer-progress.js';
import { withContext, type Logger } from './context.js';
import type { Decision, Handler, Lookup, RowChange, Tick } from './decision.js';
import { EnvelopeCodec, headersToStrings, type AnyEnvelope } from './envelope.js';
import type { TopicNamer } from './kafka.js';
import { consumerLag, initialiseSeries, messagesConsumed, retries, transactionDuration } from './metrics.js';
import { coPartitionedAssigner } from './co-partitioned-assigner.js';
import { Owners } from './owners.js';
import { DEFAULT_BACKOFF, retry, sleep, type BackoffPolicy } from './retry.js';
import { StagedTransaction, type StagingTarget } from './staged-transaction.js';
import { Changelog, isRuntimeKey, type ReadProgress } from './changelog.js';
import type { StateTable } from './state-table.js';
import type { SagaTopic, ServiceContract } from './contract.js';
import { PartitionFenced, Transactions } from './transactions.js';
import type { Consumed } from './row-store.js';
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
  readonly ticks?: readonly Tick<V>[];
  readonly lookups?: readonly Lookup[];
  /** The URL this replica's HTTP API answers at, as the other replicas reach it (owners.ts). */
  readonly url: string;
  /** How long the rows of a partition given up stay in the store, in case it comes back. */
  readonly stateCleanupDelayMs?: number;
  /** A message older than this is not acted on (dead-lettered as expired): the state's retention. */
  readonly retentionMs?: number;
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
  | {
      readonly kind: 'tick';
      readonly tick: Tick<V>;
      readonly eligible: ReadonlySet<number>;
      readonly assignment: number;
    };
type Work<V> = WorkItem<V> & { readonly done: { resolve: () => void; reject: (err: unknown) => void } };

/** What one task (partition number) has to do in the next transaction. */
interface TaskWork<V> {
  readonly batches: EachBatchPayload[];
  readonly ticks: Tick<V>[];
}

/** How long, by default, the rows committed with a message may take to become readable in a lookup. */
export const DEFAULT_LOOKUP_SETTLE_MS = 2_000;

/** How long, by default, a partition given up keeps its rows in the store (Kafka Streams: 10 min). */
export const DEFAULT_STATE_CLEANUP_DELAY_MS = 600_000;

/** A promise and its resolve (Promise.withResolvers is ES2024). */
function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** How long after a failed restore it is tried again. */
const RESTORE_RETRY_MS = 1_000;

/** How many partitions' batches may wait for one transaction together. */
const PARTITIONS_IN_FLIGHT = 16;

/**
 * How often the group's offsets are brought up to what the transactions committed: they only
 * save a restarted replica the fetch of what its state says it has processed, and show lag.
 * (Not kafkajs' autoCommit: with eachBatch it commits after every batch, whatever the interval.)
 */
const GROUP_OFFSETS_EVERY_MS = 5_000;

export class Processor<V> {
  private readonly consumer: Consumer;
  private readonly transactions: Transactions;
  private readonly stateLog: Changelog<V>;
  private readonly lookupLogs: Changelog<unknown>[];
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
  /** Which replica serves each partition: this one once a partition is restored. */
  readonly owners: Owners;
  private cleanups = new Map<number, NodeJS.Timeout>();
  /** The tasks of the current assignment opened (their previous owners fenced). */
  private tasksReady: Promise<void> = Promise.resolve();
  /** +1 per assignment: clock work prepared for an older one is dropped. */
  private assignment = 0;
  /** The current assignment's partitions restored (after its tasks were opened). */
  private restoring: Promise<void> = Promise.resolve();
  private tickTimers: NodeJS.Timeout[] = [];
  private readonly ticking = new Set<Tick<V>>();
  private running = false;
  private restoredOnce = false;
  /** Resolved when the partitions first assigned are restored: the start waits for it. */
  private readonly firstRestore = withResolvers();
  private stopped = false;
  /** Heartbeats the group's coordinator has answered. */
  private heartbeats = 0;
  /** Partitions whose task was found fenced since the last join, by the heartbeat count then. */
  private readonly fencedAt = new Map<number, number>();

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
      // Partitions go back, when the balance allows, to the replicas that hold their state.
      partitionAssigners: [
        coPartitionedAssigner(options.url, () => [...new Set([...this.owned, ...options.table.positions().keys()])]),
      ],
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 500,
    });
    this.transactions = new Transactions(kafka, namer.id(service), this.log);
    const changelog = <T>(topic: string, table: StateTable<T>, reader: string, follow: boolean) =>
      new Changelog(kafka, options.admin, namer.physical(topic), table, namer.id(reader), this.log, follow);
    // Its own state is read at each assignment only: then only this replica writes there.
    this.stateLog = changelog(contract.stateTopic, options.table, `${service}.state-reader`, false);
    this.lookupLogs = (options.lookups ?? []).map(({ topic, table }) =>
      changelog(topic, table, `${service}.lookup.state-reader`, true),
    );
    this.progress = new ConsumerProgress(this.consumer, options.admin, this.groupId);
    this.owners = new Owners(options.url, this.consumer, this.log);
    this.staging = {
      table: options.table,
      namer,
      stateTopic: contract.stateTopic,
      groupId: this.groupId,
      log: this.log,
    };
    initialiseSeries(contract.consumes);
  }

  /** True once the state of the partitions first assigned is restored and the consumer runs. */
  get ready(): boolean {
    return this.running && this.restoredOnce;
  }

  /**
   * True once the state (and the lookups) of the partitions first assigned are restored from
   * their topics: until then a read would see part of the state, and an existing row look missing.
   */
  get restored(): boolean {
    return this.restoredOnce;
  }

  /** The state reads under way (restores, lookups catching up), for /readyz. */
  get restoreProgress(): ReadProgress[] {
    return [this.stateLog, ...this.lookupLogs].flatMap((l) => (l.progress ? [l.progress] : []));
  }

  async start(): Promise<void> {
    const { namer, contract } = this.options;
    const logs = [this.stateLog, ...this.lookupLogs];
    await Promise.all(logs.map((l) => l.start()));
    const topics = await this.options.admin.fetchTopicMetadata({ topics: [namer.physical(contract.stateTopic)] });
    this.owners.setPartitionCount(topics.topics[0]!.partitions.length);

    const consumed = contract.consumes.map((t) => namer.physical(t));
    this.consumer.on(this.consumer.events.HEARTBEAT, () => {
      this.heartbeats++;
      this.reopenFenced();
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      // The join's assignment is current: its tasks are opened below, the fenced ones anew.
      this.fencedAt.clear();
      const owned = new Set(Object.values(payload.memberAssignment).flat());
      const givenUp = [...this.owned].filter((p) => !owned.has(p));
      this.owned = owned;
      this.assignment++;
      // Reads of what is given up go to its new owner at once; what is new here is not served
      // until restored.
      this.owners.serve(new Set([...this.owners.servedPartitions].filter((p) => owned.has(p))));
      this.options.table.keepInMemory(owned);
      this.scheduleCleanup(givenUp);
      // Before any work of the new partitions: their transactional ids become ours (fencing the
      // replica that had them), then their state is read from where the store stands to the end
      // of what the previous owner committed.
      this.tasksReady = this.transactions.assign(owned);
      this.tasksReady.catch((err) => this.log.warn({ err }, 'could not open the tasks of the new partitions'));
      this.restore();
      this.log.info({ partitions: [...owned].sort((a, b) => a - b) }, 'partitions assigned');
      // Clock work due on the new partitions (timeouts, expired holds) runs at once, not a period
      // later, once it knows how far their input is processed: the group's offsets, or further.
      Promise.all([this.restoring, this.progress.assigned(consumed)])
        .then(() => {
          for (const [partition, upTo] of this.options.table.consumed())
            if (owned.has(partition)) this.progress.processedUpTo(partition, upTo);
          this.tickNow();
        })
        .catch((err) => this.log.warn({ err }, 'could not read committed offsets'));
    });
    // Not ready (its routes answer 503) until the partitions first assigned are restored.
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
    await this.firstRestore.promise;
    this.log.info(
      { partitions: [...this.owned].sort((a, b) => a - b), rows: this.options.table.size },
      `state restored from ${contract.stateTopic}`,
    );
    this.tickNow();
    for (const tick of this.options.ticks ?? []) {
      this.tickTimers.push(setInterval(() => this.tickNow(tick), tick.everyMs));
    }
    this.tickTimers.push(setInterval(() => void this.commitGroupOffsets(), GROUP_OFFSETS_EVERY_MS));
  }

  /**
   * The group's offsets brought up to what the transactions committed, on the partitions still
   * this replica's. A failure (a rebalance under way) is left to the next time.
   */
  private async commitGroupOffsets(): Promise<void> {
    const offsets = this.progress.positions(this.owned);
    if (offsets.length === 0) return;
    try {
      await this.consumer.commitOffsets(offsets);
    } catch (err) {
      this.log.debug({ err }, "could not commit the group's offsets; the next time will");
    }
  }

  /**
   * Reads the owned partitions' state (and lookups) to the end of what is committed, once their
   * tasks are open; then serves them.
   */
  private restore(): void {
    const owned = this.owned;
    const assignment = this.assignment;
    const logs = [this.stateLog, ...this.lookupLogs];
    const run = this.tasksReady
      .then(() => Promise.all(logs.map((l) => l.read(owned))))
      .then(() => {
        if (assignment !== this.assignment) return;
        this.owners.serve(owned);
        this.restoredOnce = true;
        this.firstRestore.resolve();
      });
    this.restoring = run;
    run.catch((err) => {
      // Not read to its end (the broker away): tried again, unless a newer restore took over.
      this.log.warn({ err }, 'could not read the state to its end; trying again');
      setTimeout(() => {
        if (this.restoring !== run || this.stopped) return;
        // Tasks that could not open are opened anew (those open are kept).
        this.tasksReady = this.tasksReady.catch(() => this.transactions.assign(this.owned));
        this.restore();
      }, RESTORE_RETRY_MS).unref();
    });
  }

  /**
   * A task found fenced on a partition the latest assignment gives this replica is opened anew
   * (and the partition's state read to its end before its work is done again) only once two
   * heartbeats since have been answered: the coordinator then counts this replica a member of
   * the current generation, so its assignment is current and the fence came from a commit begun
   * before it (a replica thawed, that rejoined and got the partition back). Without that proof
   * the replica may be the zombie itself, thawed with a stale assignment: reopening would fence
   * the partition's real owner, and the two would take it from each other in turn. A zombie's
   * heartbeat fails instead; it rejoins, and the join closes its fenced tasks.
   */
  private reopenFenced(): void {
    for (const [partition, seenAt] of this.fencedAt) {
      // The first heartbeat answered may have been sent before the fence was seen.
      if (this.heartbeats - seenAt < 2) continue;
      this.fencedAt.delete(partition);
      if (!this.transactions.assigned(partition)) continue;
      this.log.info({ partition }, 'fenced partition confirmed ours by the group: its task is opened anew');
      this.tasksReady = Promise.all([this.tasksReady, this.transactions.reopen(partition)]).then(() => undefined);
      this.restore();
    }
  }

  /**
   * A partition given up keeps its rows in the store a while: given back soon (a rolling
   * restart, a replica that came and went), it is restored from where it stands, not from the
   * start. Then, if it is still another's, its rows are deleted.
   */
  private scheduleCleanup(givenUp: readonly number[]): void {
    for (const partition of this.owned) {
      clearTimeout(this.cleanups.get(partition));
      this.cleanups.delete(partition);
    }
    const delay = this.options.stateCleanupDelayMs ?? DEFAULT_STATE_CLEANUP_DELAY_MS;
    for (const partition of givenUp) {
      clearTimeout(this.cleanups.get(partition));
      const timer = setTimeout(() => {
        this.cleanups.delete(partition);
        if (this.owned.has(partition)) return;
        for (const log of [this.stateLog, ...this.lookupLogs]) {
          log
            .forget(partition)
            .catch((err) => this.log.warn({ err, partition }, 'could not delete the rows of a partition given up'));
        }
      }, delay);
      timer.unref();
      this.cleanups.set(partition, timer);
    }
  }

  /** Starts a tick (every tick when none is named) unless it is under way. */
  private tickNow(only?: Tick<V>): void {
    if (!this.running || this.owned.size === 0) return;
    for (const tick of only ? [only] : (this.options.ticks ?? [])) {
      if (this.ticking.has(tick)) continue;
      this.ticking.add(tick);
      this.runTick(tick)
        .catch((err) => this.log.warn({ err }, 'tick failed; trying again at the next one'))
        .finally(() => this.ticking.delete(tick));
    }
  }

  /** Clock work, on the partitions this replica owns (and whose input is processed, if asked). */
  private async runTick(tick: Tick<V>): Promise<void> {
    const assignment = this.assignment;
    let eligible: ReadonlySet<number> = this.owned;
    for (const topic of tick.caughtUpOn ?? []) {
      eligible = await this.progress.caughtUp(this.options.namer.physical(topic), eligible);
    }
    if (assignment !== this.assignment) return;
    await this.submit({ kind: 'tick', tick, eligible, assignment });
  }

  /** Graceful stop: the batches in hand are finished and committed, then the group is left. */
  async stop(): Promise<void> {
    for (const timer of [...this.tickTimers, ...this.cleanups.values()]) clearInterval(timer);
    this.running = false;
    this.stopped = true;
    // The batches in hand finished and committed, the group's offsets follow them, then it is left.
    await this.consumer.stop();
    await this.drained;
    await this.commitGroupOffsets();
    await this.consumer.disconnect();
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
   * One transaction per task (partition number) of the group's work, committed side by side,
   * each by its task's producers. Settles every work item: a batch with its partition's
   * transaction, a tick once every partition it touched is done.
   */
  private async commitGroup(group: Work<V>[]): Promise<void> {
    try {
      // The state restored once per assignment, after its tasks are open: all that the
      // partitions' previous owners committed is in, and they can commit nothing more.
      await this.tasksReady;
      // Not read to its end (the broker away): the group fails, and the restore is tried again.
      await this.restoring;
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
      else for (const p of this.tickPartitions(work)) taskOf(p).ticks.push(work.tick);
    }
    const outcome = new Map([...tasks].map(([partition, task]) => [partition, this.commitTask(partition, task)]));
    await Promise.all(
      group.map(async (work) => {
        const partitions = work.kind === 'batch' ? [work.payload.batch.partition] : this.tickPartitions(work);
        const results = await Promise.allSettled(partitions.map((p) => outcome.get(p)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) work.done.reject(failed.reason);
        else work.done.resolve();
      }),
    );
  }

  /** The partitions a tick acts on: those it was eligible on that are still this replica's. */
  private tickPartitions(work: Extract<WorkItem<V>, { kind: 'tick' }>): number[] {
    if (work.assignment !== this.assignment) return [];
    return [...work.eligible].filter((p) => this.owned.has(p));
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
          let sent: RecordMetadata[] = [];
          handledUpTo = new Map();
          // What the partition's state says is processed: the group's offsets may trail it.
          const processed = this.options.table.consumed().get(partition) ?? {};
          const consumed: Record<string, number> = { ...processed };
          let skipped = 0;
          let advanced = false;
          try {
            for (const tick of task.ticks) this.stageTick(tick, partition, pending);
            for (const payload of task.batches) {
              const { batch, isRunning, isStale } = payload;
              const topic = this.options.namer.logical(batch.topic) as SagaTopic;
              for (const message of batch.messages) {
                if (!isRunning() || isStale()) break;
                const offset = Number(message.offset);
                if (offset >= (processed[batch.topic] ?? 0)) {
                  await this.processMessage(topic, partition, message, pending);
                  consumed[batch.topic] = offset + 1;
                } else skipped++;
                handledUpTo.set(payload, message);
              }
            }
            if (skipped > 0)
              this.log.info(
                { partition, skipped, consumed: processed },
                'messages the state says are processed: skipped',
              );
            advanced = Object.entries(consumed).some(([topic, next]) => next !== processed[topic]);
            if (advanced) pending.consumed(partition, consumed);
            sent = await this.transactions.commit(partition, pending.messages);
          } catch (err) {
            pending.aborted(err);
            throw err;
          }
          this.options.table.commit(
            pending.keys,
            this.stateOffsets(partition, pending, sent),
            advanced ? new Map<number, Consumed>([[partition, consumed]]) : undefined,
          );
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
      if (!this.fencedAt.has(partition)) this.fencedAt.set(partition, this.heartbeats);
      // Until the group has moved on, the batch comes back: not in a busy loop.
      await sleep(200);
      return;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    transactionDuration.observe(seconds);
    for (const [{ batch, resolveOffset }, message] of handledUpTo) {
      const topic = this.options.namer.logical(batch.topic);
      resolveOffset(message.offset);
      // Past the batch's transaction markers too, once its last message is done (as resolveOffset).
      const next = message === batch.messages.at(-1) ? Number(batch.lastOffset()) + 1 : Number(message.offset) + 1;
      this.progress.processed(batch.topic, partition, next);
      messagesConsumed.inc({ topic }, batch.messages.indexOf(message) + 1);
      consumerLag.set({ topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    }
  }

  /** Where the transaction's state rows end on the state topic: the store's position after them. */
  private stateOffsets(
    partition: number,
    pending: StagedTransaction<V>,
    sent: ReadonlyArray<RecordMetadata>,
  ): Map<number, number> | undefined {
    const topic = this.options.namer.physical(this.options.contract.stateTopic);
    const rows = pending.messages.get(topic)?.length ?? 0;
    const written = sent.find((m) => m.topicName === topic && m.partition === partition);
    return rows > 0 && written ? new Map([[partition, Number(written.baseOffset) + rows]]) : undefined;
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
      const { retentionMs } = this.options;
      if (retentionMs !== undefined && Date.parse(envelope.timestamp) < now.getTime() - retentionMs) {
        const error = new Error(
          `message of ${envelope.timestamp} is older than the state's retention (${retentionMs} ms): ` +
            'what it would act on may be retired, and it is not taken for new work',
        );
        pending.deadLetter({ topic, partition, message, headers, kind: 'expired', error });
        return;
      }
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
            const decision = this.options.handle(envelope, this.options.table, handlerContext);
            const reserved =
              decision?.put?.find(([key]) => isRuntimeKey(key))?.[0] ?? decision?.delete?.find(isRuntimeKey);
            if (reserved !== undefined)
              throw new Error(`row key ${reserved}: keys starting with '@' are the runtime's`);
            return decision;
          } catch (err) {
            // Handlers are pure: what throws once throws every time.
            pending.deadLetter({ topic, partition, message, headers, kind: 'handler-error', error: err });
            return undefined;
          }
        };
        let decision = decide(false);
        if (decision?.awaitLookups) {
          // Not caught up in time is transient: the whole group is retried.
          pending.lookupsCaughtUp ??= Promise.all(this.lookupLogs.map((l) => l.caughtUp()));
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
            await Promise.all(this.lookupLogs.map((l) => l.caughtUp()));
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
  private stageTick(tick: Tick<V>, partition: number, pending: StagedTransaction<V>): void {
    if (!this.running || !this.owned.has(partition)) return;
    const now = new Date();
    const partitionOf = (key: string) => {
      const partition = this.options.table.row(key)?.partition;
      if (partition === undefined) throw new Error(`tick wrote key ${key}, which has no row`);
      return partition;
    };
    for (const decision of tick.run(this.options.table, new Set([partition]), now)) {
      inTraceOf(decision.traceparent, () => pending.stage(decision, partitionOf, now));
    }
  }
}
