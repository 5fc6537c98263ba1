import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from './context.js';
import { DiskStores, type RowLifecycle } from './row-store.js';
import { StateTable } from './state-table.js';

test('whenCommitted: a key committed here or read from the log wakes its readers; none in time is undefined', async () => {
  const table = new StateTable<string>();
  const local = table.whenCommitted('a', 1_000);
  const fromLog = table.whenCommitted('b', 1_000);
  const twice = table.whenCommitted('a', 1_000);
  table.write('a', 'first', 0);
  // Not committed yet: a batch in progress may still take it back.
  expect(table.getCommitted('a')).toBeUndefined();
  table.commit(['a']);
  table.applyFromLog([['b', { rev: 1, partition: 2, value: 'replica' }]], new Map([[2, 1]]));
  await expect(local).resolves.toBe('first');
  await expect(twice).resolves.toBe('first');
  await expect(fromLog).resolves.toBe('replica');
  await expect(table.whenCommitted('a', 1)).resolves.toBe('first');
  await expect(table.whenCommitted('never', 20)).resolves.toBeUndefined();
});

test('a row read from the changelog replaces a write of ours that is not committed, and survives its undo', () => {
  const table = new StateTable<string>();
  const { undo } = table.write('k', 'mine', 0);
  table.applyFromLog([['k', { rev: 1, partition: 0, value: 'owner' }]], new Map([[0, 5]]));
  undo();
  expect(table.get('k')).toBe('owner');
  expect(table.positions().get(0)).toBe(5);
});

interface Job {
  readonly state: 'running' | 'done';
  readonly at: number;
}
const log = createLogger('test');
const jobs: RowLifecycle<Job> = {
  inFlight: (j) => j.state === 'running',
  endedAt: (j) => (j.state === 'done' ? j.at : undefined),
};

test('on disk: rows, positions, how far the input is processed, the rows in flight and the ended ones survive a reopen; retired keys are remembered', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ordersaga-store-'));
  try {
    let stores = DiskStores.open(dir, log);
    let table = new StateTable<Job>(jobs);
    table.useStore(stores.table('jobs', jobs));
    table.write('a', { state: 'running', at: 1 }, 0);
    table.write('b', { state: 'done', at: 10 }, 0);
    table.write('c', { state: 'done', at: 20 }, 1);
    table.commit(['a', 'b', 'c'], new Map([[0, 2]]));
    expect(table.size).toBe(3);
    table.write('b', undefined, 0);
    table.commit(['b'], new Map([[0, 3]]), new Map([[0, { 'in.a': 7, 'in.b': 2 }]]));
    table.applyFromLog([], new Map([[1, 4]]), new Map([[1, { 'in.a': 9 }]]));
    expect(table.size).toBe(2);
    await stores.close();

    stores = DiskStores.open(dir, log);
    table = new StateTable<Job>(jobs);
    const told: string[] = [];
    table.onChange((key) => told.push(key));
    table.useStore(stores.table('jobs', jobs));
    table.keepInMemory(new Set([0, 1]));
    // Only the row in flight is in memory, and its listeners are told of it.
    expect(told).toEqual(['a']);
    expect([...table.inFlight()].map(([k]) => k)).toEqual(['a']);
    expect(table.get('c')).toEqual({ state: 'done', at: 20 });
    expect(table.get('b')).toBeUndefined();
    expect(table.size).toBe(2);
    expect(table.retiredAt('b')).toBeGreaterThan(0);
    expect(table.positions()).toEqual(
      new Map([
        [0, 3],
        [1, 4],
      ]),
    );
    expect(table.consumed()).toEqual(
      new Map([
        [0, { 'in.a': 7, 'in.b': 2 }],
        [1, { 'in.a': 9 }],
      ]),
    );
    expect(table.endedBefore(1, 21, 10)).toEqual(['c']);
    expect(table.endedBefore(1, 20, 10)).toEqual([]);
    expect(table.endedBefore(0, 1e15, 10)).toEqual([]);
    table.forgetRetired(0, Date.now() + 1);
    expect(table.retiredAt('b')).toBeUndefined();
    table.clear();
    expect(table.size).toBe(0);
    expect(table.positions().size).toBe(0);
    expect(table.consumed().size).toBe(0);
    await stores.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a partition given up leaves memory at once, and the store when dropped; the others stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ordersaga-table-'));
  const stores = DiskStores.open(dir, log);
  try {
    const table = new StateTable<Job>(jobs);
    const told: Array<[string, boolean]> = [];
    table.onChange((key, _before, after) => told.push([key, after !== undefined]));
    table.useStore(stores.table('jobs', jobs));
    table.keepInMemory(new Set([0, 1]));
    table.write('a', { state: 'running', at: 1 }, 0);
    table.write('b', { state: 'done', at: 10 }, 0);
    table.write('c', { state: 'running', at: 20 }, 1);
    table.commit(
      ['a', 'b', 'c'],
      new Map([
        [0, 2],
        [1, 1],
      ]),
      new Map([
        [0, { in: 5 }],
        [1, { in: 6 }],
      ]),
    );
    told.length = 0;

    table.keepInMemory(new Set([1]));
    expect(told).toEqual([['a', false]]);
    expect([...table.inFlight()].map(([k]) => k)).toEqual(['c']);
    await expect(table.dropPartition(1)).rejects.toThrow('still kept here');
    await table.dropPartition(0);
    expect([table.get('a'), table.get('b')]).toEqual([undefined, undefined]);
    expect(table.get('c')).toEqual({ state: 'running', at: 20 });
    expect(table.positions()).toEqual(new Map([[1, 1]]));
    expect(table.consumed()).toEqual(new Map([[1, { in: 6 }]]));

    // Given back: its rows in flight come from the store again (none here: it was dropped).
    table.keepInMemory(new Set([0, 1]));
    expect([...table.inFlight()].map(([k]) => k)).toEqual(['c']);
  } finally {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
