/**
 * Zombies are fenced. A transactional id belongs to a task (a partition number), not to a
 * replica: whichever replica is given partition p opens the ids of task p first, which shuts its
 * previous owner out. A stock replica frozen (SIGSTOP) in the middle of its work until its
 * partitions move, then thawed (SIGCONT), makes nothing visible: what it had sent is aborted,
 * what it tries to commit is refused, and no order is reserved twice. The same when the
 * partitions go to a replica under another name (a rescheduled pod).
 */
import { expectInvariants, type World } from './support/invariants.js';
import { eventually, sleep, Stack } from './support/stack.js';

const world: World = {
  catalog: { PAD: { quantity: 100_000, price: 100 } },
  accounts: { alice: 1_000_000_000 },
};

const worldStack = () =>
  new Stack({
    env: {
      stock: { STOCK_CATALOG: JSON.stringify(world.catalog) },
      billing: { BILLING_ACCOUNTS: JSON.stringify(world.accounts) },
    },
  });

/** Orders placed one after another until `until` resolves; their ids. */
async function placeUntil(stack: Stack, until: Promise<unknown>): Promise<string[]> {
  let done = false;
  void until.finally(() => (done = true));
  const ids: string[] = [];
  while (!done) {
    const { status, body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'PAD', quantity: 1 }] });
    expect(status).toBe(202);
    ids.push(body.orderId);
    await sleep(10);
  }
  return ids;
}

/**
 * Freezes stock-<zombie> under load until `successor` owns all six partitions, thaws it, and
 * checks that nothing it did after losing them is visible.
 */
async function freezeUntilTakenOver(
  stack: Stack,
  zombie: string,
  successor: string,
  startSuccessor?: () => Promise<void>,
) {
  const scenario = (async () => {
    await sleep(1_500);
    stack.signal('stock', zombie, 'SIGSTOP');
    await startSuccessor?.();
    await eventually(
      `stock-${successor} to take every partition over`,
      async () => (stack.assigned('stock', successor).length === 6 ? true : undefined),
      60_000,
    );
    await sleep(1_000);
    stack.signal('stock', zombie, 'SIGCONT');
    // Thawed, the zombie finds out: its commits are refused, or its batches are stale.
    await eventually(
      `stock-${zombie} to rejoin the group`,
      async () =>
        stack.logLines('stock', zombie).filter((l) => l.msg === 'partitions assigned').length >= 2 ? true : undefined,
      60_000,
    );
    await sleep(1_000);
  })();
  const placed = await placeUntil(stack, scenario);
  await scenario;
  expect(placed.length).toBeGreaterThan(50);

  const { confirmed } = await expectInvariants(stack, world);
  // In what is committed: no order answered twice, every confirmed one answered (an order whose
  // saga timed out while Stock was away may have been released before its request was handled).
  const checked = await stack.readTopic('stock.checked');
  const byOrder = new Map<string, number>();
  for (const r of checked) byOrder.set(r.key!, (byOrder.get(r.key!) ?? 0) + 1);
  expect([...byOrder.values()].filter((n) => n > 1)).toEqual([]);
  for (const order of confirmed) expect(byOrder.get(order.orderId)).toBe(1);
  const { body: level } = await stack.http('stock', '/stock/PAD', undefined, successor);
  expect(level).toMatchObject({ sold: confirmed.length, reserved: 0, available: 100_000 - confirmed.length });

  // What the zombie did after its partitions moved: refused at commit ("taken over"), or its
  // batches dropped as stale; its aborted records are visible only to read_uncommitted.
  const fenced = stack.logLines('stock', zombie).filter((l) => String(l.msg).startsWith('partition taken over'));
  const all = await stack.readTopic('stock.checked', { uncommitted: true });
  // Frozen with work in hand, it tried to commit once thawed, and was refused.
  expect(fenced.length).toBeGreaterThan(0);
  return { fenced: fenced.length, aborted: all.length - checked.length };
}

describe('a stock replica frozen mid-work, its partitions taken over by the other replica', () => {
  const stack = worldStack();
  afterAll(() => stack.stopAll());

  test('thawed, it commits nothing and doubles nothing', async () => {
    await stack.startAll();
    await stack.start('stock', '1');
    await eventually('both stock replicas to own partitions', async () =>
      stack.assigned('stock', '0').length === 3 && stack.assigned('stock', '1').length === 3 ? true : undefined,
    );
    const { fenced, aborted } = await freezeUntilTakenOver(stack, '0', '1');
    console.log(`zombie stock-0: ${fenced} commits refused, ${aborted} records aborted`);
  });
});

describe('a stock replica frozen mid-work, replaced by a replica under a new name', () => {
  const stack = worldStack();
  afterAll(() => stack.stopAll());

  test('thawed, it commits nothing and doubles nothing', async () => {
    await stack.startAll();
    const { fenced, aborted } = await freezeUntilTakenOver(stack, '0', 'rescheduled', () =>
      stack.start('stock', 'rescheduled'),
    );
    console.log(`zombie stock-0: ${fenced} commits refused, ${aborted} records aborted`);
  });
});
