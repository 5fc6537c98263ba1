import { createLogger } from './context.js';
import { TopicNamer } from './kafka.js';
import { StagedTransaction } from './staged-transaction.js';
import { StateTable } from './state-table.js';

const target = () => ({
  table: new StateTable<{ units: number }>(),
  namer: new TopicNamer('t.'),
  stateTopic: 'stock.state' as const,
  groupId: 't.stock',
  log: createLogger('test'),
});

test('a key written twice in one transaction is one state record, with its last value; every change is still told', () => {
  const pending = new StagedTransaction(target());
  const now = new Date();
  pending.stage({ put: [['sku:A', { units: 9 }]] }, () => 0, now);
  pending.stage({ put: [['sku:B', { units: 4 }]] }, () => 0, now);
  pending.stage({ put: [['sku:A', { units: 8 }]] }, () => 0, now);
  pending.stage({ delete: ['sku:B'] }, () => 0, now);
  const records = pending.messages.get('t.stock.state')!;
  expect(records.map((r) => [r.key, r.value === null ? null : JSON.parse(String(r.value)).value])).toEqual([
    ['sku:A', { units: 8 }],
    ['sku:B', null],
  ]);
  expect(pending.changes.map((c) => [c.key, c.after])).toEqual([
    ['sku:A', { units: 9 }],
    ['sku:B', { units: 4 }],
    ['sku:A', { units: 8 }],
    ['sku:B', undefined],
  ]);
});

test('an aborted transaction leaves the table as it was', () => {
  const staging = target();
  staging.table.write('sku:A', { units: 10 }, 0);
  staging.table.commit(['sku:A']);
  const pending = new StagedTransaction(staging);
  pending.stage({ put: [['sku:A', { units: 9 }]] }, () => 0, new Date());
  pending.stage({ put: [['sku:A', { units: 8 }]] }, () => 0, new Date());
  pending.aborted(new Error('broker away'));
  expect(staging.table.get('sku:A')).toEqual({ units: 10 });
});
