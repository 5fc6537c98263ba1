/**
 * A service's durable state: the latest value per key of its compacted state topic, kept in
 * memory. Every row is versioned (`rev`, +1 per write) so a record read back from Kafka never
 * overwrites a newer local write, and every row remembers its partition: the partition of the
 * saga messages that own it.
 */

export interface Row<V> {
  readonly rev: number;
  readonly partition: number;
  readonly value: V;
}

/** What handlers see: reads only. */
export interface StateView<V> {
  get(key: string): V | undefined;
  rows(): IterableIterator<[string, Row<V>]>;
  readonly size: number;
}

export type ChangeListener<V> = (key: string, previous: V | undefined, next: V | undefined) => void;

export class StateTable<V> implements StateView<V> {
  private readonly data = new Map<string, Row<V>>();
  private readonly listeners: ChangeListener<V>[] = [];
  /** Rows written by the batch in progress, with what they were before it. */
  private readonly uncommitted = new Map<string, Row<V> | undefined>();
  /** Readers waiting for a key's first committed value. */
  private readonly waiting = new Map<string, Array<(value: V) => void>>();

  /** Derived views (sums, indexes) subscribe here and stay exact through writes and undos. */
  onChange(listener: ChangeListener<V>): void {
    this.listeners.push(listener);
  }

  get(key: string): V | undefined {
    return this.data.get(key)?.value;
  }

  row(key: string): Row<V> | undefined {
    return this.data.get(key);
  }

  rows(): IterableIterator<[string, Row<V>]> {
    return this.data.entries();
  }

  get size(): number {
    return this.data.size;
  }

  /**
   * What readers outside the processor (HTTP) may see: the value as last committed to Kafka,
   * never one a batch in progress might still take back.
   */
  getCommitted(key: string): V | undefined {
    return this.uncommitted.has(key) ? this.uncommitted.get(key)?.value : this.data.get(key)?.value;
  }

  /** A write of the batch in progress: returns the new row (to persist) and how to take it back. */
  write(key: string, value: V, partition: number): { row: Row<V>; undo: () => void } {
    const previous = this.data.get(key);
    if (!this.uncommitted.has(key)) this.uncommitted.set(key, previous);
    const row: Row<V> = { rev: (previous?.rev ?? 0) + 1, partition, value };
    this.set(key, previous, row);
    return {
      row,
      undo: () => {
        // A row committed elsewhere and read from the log since is newer than both: it stays.
        if (this.data.get(key) !== row) return;
        this.set(key, row, previous);
        if (this.uncommitted.get(key) === previous) this.uncommitted.delete(key);
      },
    };
  }

  /**
   * The key's committed value, as soon as there is one (written here, or by another replica and
   * read from the state topic); undefined if none within `timeoutMs`.
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

  /**
   * A transaction that wrote these keys is committed: their rows become what readers see (the
   * other tasks' transactions may still be in progress).
   */
  commit(keys: Iterable<string>): void {
    for (const key of new Set(keys)) {
      this.uncommitted.delete(key);
      this.wakeReaders(key);
    }
  }

  /**
   * A row read from the state topic: applied when newer than what we hold, or as new as a write
   * of ours that is not committed. That write then came too late: the row was committed by the
   * replica that owns the partition now (ours will be refused: fenced), and it wins.
   */
  applyFromLog(key: string, row: Row<V>): boolean {
    const current = this.data.get(key);
    const pending = this.uncommitted.has(key);
    if (current && (pending ? current.rev > row.rev : current.rev >= row.rev)) return false;
    this.set(key, current, row);
    this.uncommitted.delete(key);
    this.wakeReaders(key);
    return true;
  }

  private wakeReaders(key: string): void {
    const readers = this.waiting.get(key);
    const value = readers && this.getCommitted(key);
    if (value !== undefined) for (const wake of [...readers!]) wake(value);
  }

  private set(key: string, from: Row<V> | undefined, to: Row<V> | undefined): void {
    if (to) this.data.set(key, to);
    else this.data.delete(key);
    for (const listener of this.listeners) listener(key, from?.value, to?.value);
  }
}
