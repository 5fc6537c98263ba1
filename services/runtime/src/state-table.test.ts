import { StateTable } from './state-table.js';

test('whenCommitted: a key committed here or read from the log wakes its readers; none in time is undefined', async () => {
  const table = new StateTable<string>();
  const local = table.whenCommitted('a', 1_000);
  const fromLog = table.whenCommitted('b', 1_000);
  const twice = table.whenCommitted('a', 1_000);
  table.write('a', 'first', 0);
  // Not committed yet: a batch in progress may still take it back.
  expect(table.getCommitted('a')).toBeUndefined();
  table.commit();
  table.applyFromLog('b', { rev: 1, partition: 2, value: 'replica' });
  await expect(local).resolves.toBe('first');
  await expect(twice).resolves.toBe('first');
  await expect(fromLog).resolves.toBe('replica');
  await expect(table.whenCommitted('a', 1)).resolves.toBe('first');
  await expect(table.whenCommitted('never', 20)).resolves.toBeUndefined();
});
