/**
 * A service's durable state: the latest row per key of its compacted state topic. The committed
 * rows live in a RowStore (on local disk when the service runs, row-store.ts); the table keeps in
 * memory only what is hot: the rows in flight, and the writes of the transactions in progress
 * until they commit (or are undone). Every row remembers its partition: the partition of the
 * messages that own it; a replica keeps in memory the rows of the partitions it owns only.
 */
import { MemoryRows, type Consumed, type Row, type RowLifecycle, type RowStore, type RowWrite } from './row-store.js';

export type { Consumed, Row, RowLifecycle } from './row-store.js';

/** What handlers see: reads only, their own transaction's writes included. */
export interface StateView<V> {
  get(key: string): V | undefined;
}

export type ChangeListener<V> = (key: string, previous: V | undefined, next: V | undefined) => void;

export class StateTable<V> implements StateView<V> {
  private store: RowStore<V>;
  /** The committed rows in flight (the store has them too): what listeners and metrics watch. */
  private readonly live = new Map<string, Row<V>>();
  /** Writes of the transactions in progress: the row each key has now (undefined: deleted). */
  private readonly pending = new Map<string, { readonly row: Row<V> | undefined; readonly partition: number }>();
  private readonly listeners: ChangeListener<V>[] = [];
  /** Readers waiting for a key's first committed value. */
  private readonly waiting = new Map<string, Array<(value: V) => void>>();
  /** The partitions whose rows in flight are kept in memory (every partition when not said). */
  private inMemory: ReadonlySet<number> | undefined;

  constructor(readonly lifecycle: RowLifecycle<V> = { inFlight: () => false, endedAt: () => undefined }) {
    this.store = new MemoryRows(lifecycle);
  }

  /**
   * Moves the table onto its durable store, before any row is read into it. Its rows in flight
   * come into memory with their partitions (keepInMemory).
   */
  useStore(store: RowStore<V>): void {
    if (this.store.size > 0 || this.pending.size > 0) throw new Error('a table takes its store before it holds rows');
    this.store = store;
    this.inMemory = new Set();
  }

  /**
   * The partitions this replica owns now: the rows in flight of the others leave memory (the
   * listeners learn they are gone from here), those of partitions just gained come from the
   * store (the listeners learn of them as if they had just been written; a restore then brings
   * them up to date).
   */
  keepInMemory(partitions: ReadonlySet<number>): void {
    const before = this.inMemory;
    this.inMemory = new Set(partitions);
    for (const [key, row] of [...this.live]) {
      if (partitions.has(row.partition)) continue;
      this.live.delete(key);
      this.notify(key, row.value, undefined);
    }
    for (const [key, row] of this.store.inFlight()) {
      if (!partitions.has(row.partition) || before?.has(row.partition) || this.live.has(key)) continue;
      this.live.set(key, row);
      this.notify(key, undefined, row.value);
    }
  }

  /** Forgets a partition another replica owns now: its rows, retirements and position. */
  async dropPartition(partition: number): Promise<void> {
    if (this.inMemory?.has(partition) !== false) throw new Error(`partition ${partition} is still kept here`);
    await this.store.dropPartition(partition);
  }

  /** Derived views (sums, indexes) subscribe here and stay exact through writes and undos. */
  onChange(listener: ChangeListener<V>): void {
    this.listeners.push(listener);
  }

  get(key: string): V | undefined {
    return this.row(key)?.value;
  }

  row(key: string): Row<V> | undefined {
    const pending = this.pending.get(key);
    return pending ? pending.row : this.committedRow(key);
  }

  /**
   * What readers outside the processor (HTTP) may see: the value as last committed to Kafka,
   * never one a transaction in progress might still take back.
   */
  getCommitted(key: string): V | undefined {
    return this.committedRow(key)?.value;
  }

  /** The committed rows, in key order from `start`. */
  rows(start?: string): Iterable<[string, Row<V>]> {
    return this.store.rows(start);
  }

  /** The committed rows in flight. */
  inFlight(): IterableIterator<[string, Row<V>]> {
    return this.live.entries();
  }

  get size(): number {
    return this.store.size;
  }

  /** The next changelog offset the committed rows reflect, per partition read. */
  positions(): ReadonlyMap<number, number> {
    return this.store.positions();
  }

  /** How far each partition's input is processed, as its committed state says. */
  consumed(): ReadonlyMap<number, Consumed> {
    return this.store.consumed();
  }

  /** Keys of the partition's committed rows that ended before `before` (epoch ms), oldest first. */
  endedBefore(partition: number, before: number, limit: number): string[] {
    return this.store.endedBefore(partition, before, limit);
  }

  /**
   * A write of a transaction in progress (undefined: the row is deleted): returns the new row (to
   * send to the changelog) and how to take it back.
   */
  write(key: string, value: V | undefined, partition: number): { row: Row<V> | undefined; undo: () => void } {
    const before = this.row(key);
    const earlier = this.pending.get(key);
    const row = value === undefined ? undefined : { rev: (before?.rev ?? 0) + 1, partition, value };
    const entry = { row, partition };
    this.pending.set(key, entry);
    this.notify(key, before?.value, value);
    return {
      row,
      undo: () => {
        // Committed (or read from the changelog) since: it stays.
        if (this.pending.get(key) !== entry) return;
        if (earlier) this.pending.set(key, earlier);
        else this.pending.delete(key);
        this.notify(key, value, before?.value);
      },
    };
  }

  /**
   * A transaction that wrote these keys is committed: their rows go to the store, with the
   * changelog offsets the transaction's records reach and how far it processed the input, and
   * become what readers see (the other tasks' transactions may still be in progress).
   */
  commit(
    keys: Iterable<string>,
    positions?: ReadonlyMap<number, number>,
    consumed?: ReadonlyMap<number, Consumed>,
  ): void {
    const writes: RowWrite<V>[] = [];
    const at = Date.now();
    for (const key of new Set(keys)) {
      const entry = this.pending.get(key);
      if (entry) writes.push(entry.row ? [key, entry.row] : [key, undefined, { partition: entry.partition, at }]);
    }
    this.store.apply(writes, positions, consumed);
    for (const [key, row] of writes) {
      this.pending.delete(key);
      this.remember(key, row);
      this.wakeReaders(key);
    }
  }

  /**
   * Rows read from the changelog, in its order (a restore, or a followed lookup): what was
   * committed, so they replace what the table has.
   */
  applyFromLog(
    writes: readonly RowWrite<V>[],
    positions: ReadonlyMap<number, number>,
    consumed?: ReadonlyMap<number, Consumed>,
  ): void {
    const before = new Map<string, V | undefined>();
    for (const [key] of writes) if (!before.has(key)) before.set(key, this.row(key)?.value);
    this.store.apply(writes, positions, consumed);
    const after = new Map<string, Row<V> | undefined>();
    for (const [key, row] of writes) after.set(key, row);
    for (const [key, row] of after) {
      this.pending.delete(key);
      this.remember(key, row);
      this.notify(key, before.get(key), row?.value);
      this.wakeReaders(key);
    }
  }

  /** When the key's row was retired (epoch ms), while the store remembers it. */
  retiredAt(key: string): number | undefined {
    return this.row(key) ? undefined : this.store.retiredAt(key);
  }

  /** Forgets the partition's retirements before `before` (epoch ms). */
  forgetRetired(partition: number, before: number): void {
    this.store.forgetRetired(partition, before);
  }

  /** Forgets every row (the changelog is read again from its start). */
  clear(): void {
    this.store.clear();
    for (const [key, row] of [...this.live]) {
      this.live.delete(key);
      this.notify(key, row.value, undefined);
    }
  }

  /**
   * The key's committed value, as soon as there is one (written here, or read from the state
   * topic); undefined if none within `timeoutMs`.
   */
  whenCommitted(key: string, timeoutMs: number): Promise<V | undefined> {
    const now = this.getCommitted(key);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (value: V | undefined) => {
        clearTimeout(timer);
        const others = (this.waiting.get(key) ?? []).filter((w) => w !== done);
        if (others.length > 0) this.waiting.set(key, others);
        else this.waiting.delete(key);
        resolve(value);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.waiting.set(key, [...(this.waiting.get(key) ?? []), done]);
    });
  }

  private committedRow(key: string): Row<V> | undefined {
    return this.live.get(key) ?? this.store.get(key);
  }

  private remember(key: string, row: Row<V> | undefined): void {
    if (row && this.lifecycle.inFlight(row.value) && this.inMemory?.has(row.partition) !== false)
      this.live.set(key, row);
    else this.live.delete(key);
  }

  private wakeReaders(key: string): void {
    const readers = this.waiting.get(key);
    const value = readers && this.getCommitted(key);
    if (value !== undefined) for (const wake of [...readers!]) wake(value);
  }

  private notify(key: string, from: V | undefined, to: V | undefined): void {
    if (from === undefined && to === undefined) return;
    for (const listener of this.listeners) listener(key, from, to);
  }
}
