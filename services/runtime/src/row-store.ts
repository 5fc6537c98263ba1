/**
 * Where a state table keeps its committed rows: on local disk (LMDB, through lmdb-js), as Kafka
 * Streams keeps its stores in RocksDB, or in memory (unit tests, and readers that follow a whole
 * topic). The changelog (the compacted state topic) is the truth; the store is a copy of it that
 * survives a restart, with the changelog offset it reflects per partition written in the same
 * LMDB transaction as the rows, so a restart reads only the tail, exactly. The same goes for how
 * far the service has processed its input, which the changelog carries too (Consumed).
 *
 * Indexes beside the rows, kept in the same transactions, so nothing is scanned at start: the
 * rows in flight (the table's listeners rebuild their views from them), the rows that ended, by
 * partition and end time (the retention tick retires the oldest), and the keys retired, with
 * when (forgotten in turn, by time).
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from './context.js';

export interface Row<V> {
  readonly rev: number;
  readonly partition: number;
  readonly value: V;
}

/** How a service's rows live and end: what stays in memory, what is retired and when. */
export interface RowLifecycle<V> {
  /** A row still at work (a saga in flight, a hold): kept in memory, its listeners told at start. */
  readonly inFlight: (value: V) => boolean;
  /** When the row's story ended (epoch ms), for retention; undefined while it goes on (or for ever). */
  readonly endedAt: (value: V) => number | undefined;
}

/** When and where a row was retired (deleted: a tombstone on the changelog). */
export interface Retired {
  readonly partition: number;
  /** Epoch ms. */
  readonly at: number;
}

/** A committed change: the row, or its retirement. */
export type RowWrite<V> =
  readonly [key: string, row: Row<V>] | readonly [key: string, row: undefined, retired: Retired];

/**
 * How far a partition's input is processed, as committed with its state: the next offset to
 * process per consumed (physical) topic, for that partition number of each.
 */
export type Consumed = Readonly<Record<string, number>>;

export interface RowStore<V> {
  get(key: string): Row<V> | undefined;
  /** The rows in key order, from `start` (inclusive). */
  rows(start?: string): Iterable<[string, Row<V>]>;
  readonly size: number;
  /** The rows in flight. */
  inFlight(): Iterable<[string, Row<V>]>;
  /** Keys of the partition's rows that ended before `before` (epoch ms), oldest first. */
  endedBefore(partition: number, before: number, limit: number): string[];
  /** When the key's row was retired, while that is remembered. */
  retiredAt(key: string): number | undefined;
  /** Forgets the partition's retirements before `before` (epoch ms). */
  forgetRetired(partition: number, before: number): void;
  /**
   * Committed writes, the changelog positions they bring the store to, and how far the input is
   * processed with them, per partition: atomically.
   */
  apply(
    writes: Iterable<RowWrite<V>>,
    positions?: ReadonlyMap<number, number>,
    consumed?: ReadonlyMap<number, Consumed>,
  ): void;
  /** The next changelog offset the store reflects, per partition it has read. */
  positions(): ReadonlyMap<number, number>;
  /** How far each partition's input is processed, as its state last said. */
  consumed(): ReadonlyMap<number, Consumed>;
  /** Forgets every row and position: the changelog is read again from its start. */
  clear(): void;
  /** Forgets the partition's rows, retirements and position (another replica keeps them now). */
  dropPartition(partition: number): Promise<void>;
}

/** How many rows a partition's deletion looks at between two turns of the event loop. */
const DROP_CHUNK = 2_000;

const NO_LIFECYCLE: RowLifecycle<unknown> = { inFlight: () => false, endedAt: () => undefined };

/** Sorts as numbers do: an end time as a fixed-width decimal. */
const endKey = (partition: number, endedAt: number, key: string) =>
  `${String(partition).padStart(5, '0')}|${String(Math.max(0, Math.floor(endedAt))).padStart(15, '0')}|${key}`;

export class MemoryRows<V> implements RowStore<V> {
  private readonly data = new Map<string, Row<V>>();
  private readonly read = new Map<number, number>();
  private readonly processed = new Map<number, Consumed>();
  private readonly retired = new Map<string, Retired>();

  constructor(private readonly lifecycle: RowLifecycle<V> = NO_LIFECYCLE as RowLifecycle<V>) {}

  get(key: string): Row<V> | undefined {
    return this.data.get(key);
  }

  *rows(start?: string): Iterable<[string, Row<V>]> {
    const keys = [...this.data.keys()].sort();
    for (const key of keys) if (start === undefined || key >= start) yield [key, this.data.get(key)!];
  }

  get size(): number {
    return this.data.size;
  }

  *inFlight(): Iterable<[string, Row<V>]> {
    for (const entry of this.data) if (this.lifecycle.inFlight(entry[1].value)) yield entry;
  }

  endedBefore(partition: number, before: number, limit: number): string[] {
    const ended: Array<[string, string]> = [];
    for (const [key, row] of this.data) {
      const at = row.partition === partition ? this.lifecycle.endedAt(row.value) : undefined;
      if (at !== undefined && at < before) ended.push([endKey(partition, at, key), key]);
    }
    return ended
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, limit)
      .map(([, key]) => key);
  }

  retiredAt(key: string): number | undefined {
    return this.retired.get(key)?.at;
  }

  forgetRetired(partition: number, before: number): void {
    for (const [key, r] of this.retired) if (r.partition === partition && r.at < before) this.retired.delete(key);
  }

  apply(
    writes: Iterable<RowWrite<V>>,
    positions?: ReadonlyMap<number, number>,
    consumed?: ReadonlyMap<number, Consumed>,
  ): void {
    for (const [key, row, retired] of writes) {
      if (row) {
        this.data.set(key, row);
        this.retired.delete(key);
      } else {
        this.data.delete(key);
        this.retired.set(key, retired!);
      }
    }
    for (const [partition, next] of positions ?? []) this.read.set(partition, next);
    for (const [partition, upTo] of consumed ?? []) this.processed.set(partition, upTo);
  }

  positions(): ReadonlyMap<number, number> {
    return this.read;
  }

  consumed(): ReadonlyMap<number, Consumed> {
    return this.processed;
  }

  clear(): void {
    this.data.clear();
    this.read.clear();
    this.processed.clear();
    this.retired.clear();
  }

  async dropPartition(partition: number): Promise<void> {
    for (const [key, row] of this.data) if (row.partition === partition) this.data.delete(key);
    for (const [key, r] of this.retired) if (r.partition === partition) this.retired.delete(key);
    this.read.delete(partition);
    this.processed.delete(partition);
  }
}

/** LMDB's meta page: its magic number after the page header (24 bytes in the LMDB lmdb-js builds; MDB_MAGIC). */
const LMDB_MAGIC = 0xbeefc0de;

/** True for a file with LMDB's meta page, or no file yet (a new store). */
function looksLikeLmdb(file: string): boolean {
  if (!existsSync(file)) return true;
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(28);
    return readSync(fd, head, 0, 28, 0) === 28 && head.readUInt32LE(24) === LMDB_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/**
 * A process's on-disk stores: one LMDB environment in `dir`, a few named databases per table.
 * No fsync per commit (`noSync`): a process crash loses nothing (the pages are the kernel's), a
 * machine crash may roll the store back to an earlier commit, whose positions say where to read
 * the changelog from. A store that cannot be opened (corrupt, another format) is deleted and
 * rebuilt from the changelog.
 */
export class DiskStores {
  private constructor(
    private readonly root: RootDatabase,
    readonly dir: string,
  ) {}

  static open(dir: string, log: Logger): DiskStores {
    mkdirSync(dir, { recursive: true });
    const openRoot = () => open({ path: dir, noSync: true, maxDbs: 64, compression: false });
    try {
      // LMDB trusts its file: one that is not an LMDB environment is refused before it is mapped.
      if (!looksLikeLmdb(join(dir, 'data.mdb'))) throw new Error('data.mdb is not an LMDB environment');
      const root = openRoot();
      // Reading the catalogue proves the file is a readable LMDB environment.
      root.getStats();
      return new DiskStores(root, dir);
    } catch (err) {
      log.warn({ err, dir }, `state store in ${dir} could not be opened: deleted, to be rebuilt from the changelog`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      return new DiskStores(openRoot(), dir);
    }
  }

  /** The store of one table (named after its topic). */
  table<V>(name: string, lifecycle: RowLifecycle<V> = NO_LIFECYCLE as RowLifecycle<V>): RowStore<V> {
    return new LmdbRows<V>(this.root, name, lifecycle);
  }

  close(): Promise<void> {
    return this.root.close();
  }
}

class LmdbRows<V> implements RowStore<V> {
  private readonly data: Database<Row<V>, string>;
  private readonly flying: Database<number, string>;
  private readonly ended: Database<string, string>;
  private readonly read: Database<number, number>;
  private readonly processed: Database<Consumed, number>;
  private readonly retired: Database<Retired, string>;
  private readonly retiredByTime: Database<string, string>;
  private readonly cachedPositions = new Map<number, number>();
  private readonly cachedConsumed = new Map<number, Consumed>();

  constructor(
    private readonly root: RootDatabase,
    name: string,
    private readonly lifecycle: RowLifecycle<V>,
  ) {
    this.data = root.openDB({ name: `${name}:rows`, encoding: 'json' });
    this.flying = root.openDB({ name: `${name}:in-flight`, encoding: 'json' });
    this.ended = root.openDB({ name: `${name}:ended`, encoding: 'string' });
    this.read = root.openDB({ name: `${name}:positions`, encoding: 'json', keyEncoding: 'uint32' });
    this.processed = root.openDB({ name: `${name}:consumed`, encoding: 'json', keyEncoding: 'uint32' });
    this.retired = root.openDB({ name: `${name}:retired`, encoding: 'json' });
    this.retiredByTime = root.openDB({ name: `${name}:retired-by-time`, encoding: 'string' });
    for (const { key, value } of this.read.getRange()) this.cachedPositions.set(key, value);
    for (const { key, value } of this.processed.getRange()) this.cachedConsumed.set(key, value);
  }

  get(key: string): Row<V> | undefined {
    return this.data.get(key);
  }

  *rows(start?: string): Iterable<[string, Row<V>]> {
    for (const { key, value } of this.data.getRange(start === undefined ? {} : { start })) yield [key, value];
  }

  get size(): number {
    // The B-tree's own count: getCount() would walk (and map into memory) every page.
    return (this.data.getStats() as { entryCount: number }).entryCount;
  }

  *inFlight(): Iterable<[string, Row<V>]> {
    for (const key of this.flying.getKeys()) {
      const row = this.data.get(key);
      if (row) yield [key, row];
    }
  }

  endedBefore(partition: number, before: number, limit: number): string[] {
    const keys: string[] = [];
    for (const { value } of this.ended.getRange({
      start: endKey(partition, 0, ''),
      end: endKey(partition, before, ''),
      limit,
    })) {
      keys.push(value);
    }
    return keys;
  }

  retiredAt(key: string): number | undefined {
    return this.retired.get(key)?.at;
  }

  forgetRetired(partition: number, before: number): void {
    const range = { start: endKey(partition, 0, ''), end: endKey(partition, before, '') };
    const forgotten = [...this.retiredByTime.getRange(range)];
    if (forgotten.length === 0) return;
    this.root.transactionSync(() => {
      for (const { key, value } of forgotten) {
        this.retiredByTime.removeSync(key);
        this.retired.removeSync(value);
      }
    });
  }

  apply(
    writes: Iterable<RowWrite<V>>,
    positions?: ReadonlyMap<number, number>,
    consumed?: ReadonlyMap<number, Consumed>,
  ): void {
    this.root.transactionSync(() => {
      for (const [key, row, retired] of writes) {
        const previous = this.data.get(key);
        const endedBefore = previous && this.lifecycle.endedAt(previous.value);
        if (previous && endedBefore !== undefined) this.ended.removeSync(endKey(previous.partition, endedBefore, key));
        const wasRetired = this.retired.get(key);
        if (wasRetired) {
          this.retiredByTime.removeSync(endKey(wasRetired.partition, wasRetired.at, key));
          this.retired.removeSync(key);
        }
        if (!row) {
          this.data.removeSync(key);
          this.flying.removeSync(key);
          this.retired.putSync(key, retired);
          this.retiredByTime.putSync(endKey(retired.partition, retired.at, key), key);
          continue;
        }
        this.data.putSync(key, row);
        if (this.lifecycle.inFlight(row.value)) this.flying.putSync(key, row.partition);
        else this.flying.removeSync(key);
        const endedAt = this.lifecycle.endedAt(row.value);
        if (endedAt !== undefined) this.ended.putSync(endKey(row.partition, endedAt, key), key);
      }
      for (const [partition, next] of positions ?? []) this.read.putSync(partition, next);
      for (const [partition, upTo] of consumed ?? []) this.processed.putSync(partition, upTo);
    });
    for (const [partition, next] of positions ?? []) this.cachedPositions.set(partition, next);
    for (const [partition, upTo] of consumed ?? []) this.cachedConsumed.set(partition, upTo);
  }

  positions(): ReadonlyMap<number, number> {
    return this.cachedPositions;
  }

  consumed(): ReadonlyMap<number, Consumed> {
    return this.cachedConsumed;
  }

  clear(): void {
    this.root.transactionSync(() => {
      const all = [this.data, this.flying, this.ended, this.read, this.processed, this.retired, this.retiredByTime];
      for (const db of all as Database<unknown, string | number>[]) {
        db.clearSync();
      }
    });
    this.cachedPositions.clear();
    this.cachedConsumed.clear();
  }

  /**
   * A scan of every row, a chunk per turn of the event loop (the rows are keyed by key, not
   * partition: an index by partition would cost every write for what happens after a rebalance).
   * The position goes last: until then a read of the partition starts where its rows stand.
   */
  async dropPartition(partition: number): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const chunk = [...this.data.getRange({ ...(after === undefined ? {} : { start: after }), limit: DROP_CHUNK + 1 })]
        .map(({ key, value }) => [key, value] as const)
        .filter(([key]) => key !== after);
      if (chunk.length === 0) break;
      after = chunk[chunk.length - 1]![0];
      const theirs = chunk.filter(([, row]) => row.partition === partition);
      if (theirs.length > 0) {
        this.root.transactionSync(() => {
          for (const [key, row] of theirs) {
            const endedAt = this.lifecycle.endedAt(row.value);
            if (endedAt !== undefined) this.ended.removeSync(endKey(partition, endedAt, key));
            this.flying.removeSync(key);
            this.data.removeSync(key);
          }
        });
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const range = { start: endKey(partition, 0, ''), end: endKey(partition + 1, 0, '') };
    const retired = [...this.retiredByTime.getRange(range)];
    this.root.transactionSync(() => {
      for (const { key, value } of retired) {
        this.retiredByTime.removeSync(key);
        this.retired.removeSync(value);
      }
      this.read.removeSync(partition);
      this.processed.removeSync(partition);
    });
    this.cachedPositions.delete(partition);
    this.cachedConsumed.delete(partition);
  }
}
