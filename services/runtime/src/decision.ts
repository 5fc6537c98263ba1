/**
 * What a service gives the runtime, and what it gets back: a pure handler
 * (message, state, context) -> decision, clock work (ticks), the lookups it reads, and the row
 * changes each committed transaction made.
 */
import type { AnyEnvelope } from './envelope.js';
import type { Outgoing } from './envelope.js';
import type { StateTable, StateView } from './state-table.js';
import type { SagaTopic, StateTopic } from './contract.js';
import type { WorkSpan } from './tracing.js';

/** A side effect outside Kafka (a webhook call): run before the commit, at least once. */
export interface Effect {
  readonly description: string;
  run(): Promise<void>;
}

/** What a handler decides. */
export interface Decision<V> {
  readonly put?: ReadonlyArray<readonly [key: string, value: V]>;
  /** Rows deleted: tombstones on the state topic (retention). */
  readonly delete?: ReadonlyArray<string>;
  readonly send?: ReadonlyArray<Outgoing>;
  readonly effects?: ReadonlyArray<Effect>;
  /** A span of its own for this work, child of the message's; what it sends is sent from it. */
  readonly span?: WorkSpan;
  /**
   * Decide again once the lookup tables have read everything committed so far: for a message
   * that refers to a row another service committed with it, which a lookup may not have yet.
   */
  readonly awaitLookups?: true;
}

export interface HandlerContext {
  readonly now: Date;
  /** Trace id of the message being handled, when it carries one. */
  readonly traceId?: string;
  /** W3C traceparent of the span handling the message: later work on it continues from there. */
  readonly traceparent?: string;
  /**
   * True when the lookup tables have read everything committed before this message was handled,
   * and then had LOOKUP_SETTLE_MS for the rows committed with it to become readable (a
   * transaction's commit markers reach its partitions one after the other): what is still
   * missing then will not come.
   */
  readonly lookupsCaughtUp?: boolean;
}

export type Handler<V> = (message: AnyEnvelope, state: StateView<V>, context: HandlerContext) => Decision<V>;

/**
 * Work not started by a message, on partitions this replica owns: `partitions` says which (clock
 * work runs in each task's transaction, for that task's partition).
 */

/** What a tick decides for one of its rows, in the trace of `traceparent` when it has one. */
export type TickDecision<V> = Decision<V> & { readonly traceparent?: string };

export interface Tick<V> {
  readonly everyMs: number;
  /**
   * Run only on partitions in which every message committed to these topics is processed: for
   * clock work that a message on its way would contradict.
   */
  readonly caughtUpOn?: readonly SagaTopic[];
  run(state: StateView<V>, partitions: ReadonlySet<number>, now: Date): ReadonlyArray<TickDecision<V>>;
}

/** Another service's state, read (never written) by a service: a table it looks rows up in. */
export interface Lookup {
  readonly topic: StateTopic;
  // Any row type: the runtime only reads it into the table.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly table: StateTable<any>;
}

/** A state row changed by a committed transaction (`after` undefined: deleted). */
export interface RowChange<V> {
  readonly key: string;
  readonly before: V | undefined;
  readonly after: V | undefined;
}
