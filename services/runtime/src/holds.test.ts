import { createLogger } from './context.js';
import { holdExpiry, type HoldRules } from './holds.js';
import { registry } from './metrics.js';
import { StateTable } from './state-table.js';

interface Hold {
  readonly status: 'held' | 'final' | 'released';
  readonly until?: number;
  readonly reason?: string;
}

const rules: HoldRules<Hold> = {
  name: 'test-hold',
  holdMs: 1_000,
  heldUntil: (h) => (h.status === 'held' ? h.until : undefined),
  expire: (h, reason) => ({ status: 'released', reason }),
  settledBy: ['order.confirmed'],
};

async function expired(): Promise<number> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith('ordersaga_holds_expired_total{hold="test-hold"}'));
  return Number(line?.split(' ')[1]);
}

test('expires, once, the holds past their time on the partitions it may act on; counts what commits', async () => {
  const table = new StateTable<Hold>();
  const { tick, observe } = holdExpiry(table, rules, createLogger('test'));
  expect(tick.caughtUpOn).toEqual(['order.confirmed']);
  expect(tick.everyMs).toBe(100);
  table.write('due', { status: 'held', until: 1_000 }, 0);
  table.write('later', { status: 'held', until: 5_000 }, 0);
  table.write('elsewhere', { status: 'held', until: 1_000 }, 1);
  table.write('settled', { status: 'final' }, 0);
  table.commit(['due', 'later', 'elsewhere', 'settled']);

  const decisions = tick.run(table, new Set([0]), new Date(2_000));
  expect(decisions).toEqual([
    { put: [['due', { status: 'released', reason: expect.stringMatching(/test-hold hold expired after 1000 ms/) }]] },
  ]);
  expect(await expired()).toBe(0);

  // Committed: counted once; the row holds nothing any more, so the next tick leaves it.
  const [[key, value]] = decisions[0]!.put! as [[string, Hold]];
  table.write(key, value, 0);
  table.commit([key]);
  observe([{ key, before: { status: 'held', until: 1_000 }, after: value }]);
  expect(await expired()).toBe(1);
  expect(tick.run(table, new Set([0, 1, 2, 3]), new Date(2_000)).map((d) => d.put?.[0]?.[0])).toEqual(['elsewhere']);
  // A change the tick did not make is not an expiry.
  observe([{ key: 'later', before: { status: 'held', until: 5_000 }, after: { status: 'final' } }]);
  expect(await expired()).toBe(1);
});
