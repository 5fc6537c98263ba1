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
  table.applyFromLog('b', { rev: 1, partition: 2, value: 'replica' });
  await expect(local).resolves.toBe('first');
  await expect(twice).resolves.toBe('first');
  await expect(fromLog).resolves.toBe('replica');
  await expect(table.whenCommitted('a', 1)).resolves.toBe('first');
  await expect(table.whenCommitted('never', 20)).resolves.toBeUndefined();
});

test('a row committed elsewhere beats a write of ours that is not committed, and survives its undo', () => {
  const table = new StateTable<string>();
  table.write('k', 'v1', 0);
  table.commit(['k']);
  // Ours (rev 2, not committed), then the new owner's rev 2 and rev 3 from the log.
  const ours = table.write('k', 'zombie', 0);
  expect(table.applyFromLog('k', { rev: 2, partition: 0, value: 'owner-2' })).toBe(true);
  expect(table.getCommitted('k')).toBe('owner-2');
  expect(table.applyFromLog('k', { rev: 3, partition: 0, value: 'owner-3' })).toBe(true);
  ours.undo(); // our transaction was fenced
  expect(table.get('k')).toBe('owner-3');
  expect(table.getCommitted('k')).toBe('owner-3');
  // An older row from the log never goes back over a newer one.
  expect(table.applyFromLog('k', { rev: 2, partition: 0, value: 'owner-2' })).toBe(false);
});

test('our own committed write read back from the log changes nothing', () => {
  const table = new StateTable<string>();
  const seen: Array<string | undefined> = [];
  table.onChange((_key, _before, after) => seen.push(after));
  const { row } = table.write('k', 'v', 0);
  table.commit(['k']);
  expect(table.applyFromLog('k', row)).toBe(false);
  expect(seen).toEqual(['v']);
});
