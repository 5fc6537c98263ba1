/**
 * State on local disk, restored from the state topic from where the store stands: a restart
 * reads only what changed since, a lost or corrupt store is rebuilt from the topic, and finished
 * orders are retired after ORDER_RETENTION on every state topic (a late duplicate then changes
 * nothing).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, sleep, Stack } from './support/stack.js';

const PEN = { sku: 'PEN', quantity: 1 };

/** The offsets order-1's last start read from a state topic ("read <topic>: N offsets ..."), 0 when none. */
function offsetsRead(stack: Stack, topic: 'order.state'): number {
  const lines = stack.logLines('order', '1');
  const opened = lines.findLastIndex((l) => /^state store opened/.test(String(l.msg)));
  const read = lines.slice(opened).find((l) => String(l.msg).startsWith(`read ${stack.topic(topic)}:`));
  return Number(read?.offsets ?? 0);
}

/**
 * Places orders and waits for them. Keyless orders take ids of the partitions the replica serves;
 * with `keyPrefix`, their ids spread over every partition (each placed by its owner: retried while
 * the owner restores).
 */
async function placeAndFinish(stack: Stack, count: number, instance = '0', keyPrefix?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const headers: Record<string, string> = keyPrefix ? { 'idempotency-key': `${keyPrefix}-${i}` } : {};
    const { status, body } = await eventually('the order to be placed', async () => {
      const answer = await stack.placeOrder({ customerId: 'alice', items: [PEN] }, headers, instance);
      return answer.status === 503 ? undefined : answer;
    });
    expect(status).toBe(202);
    ids.push(body.orderId);
  }
  for (const id of ids) expect((await stack.finished(id)).status).toBe('CONFIRMED');
  return ids;
}

describe('the state store', () => {
  const stack = new Stack({
    env: {
      stock: { STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 100_000, price: 100 } }) },
      billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000_000 }) },
    },
  });
  beforeAll(() => stack.startAll(), 120_000);
  afterAll(() => stack.stopAll());

  test('a restart reads only the tail; a deleted or corrupt store is rebuilt from the topic', async () => {
    /** The records of order.state in the partitions order-1 has now (and how many of them are of `ids`). */
    const recordsOfReplica1 = async (ids: readonly string[] = []) => {
      const mine = stack.assigned('order', '1');
      const records = (await stack.readTopic('order.state')).filter((r) => mine.includes(r.partition));
      const admin = stack.kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(stack.topic('order.state')).finally(() => admin.disconnect());
      // What a read of its partitions from the start reads: records and transaction markers.
      const offsets = ends.filter((e) => mine.includes(e.partition)).reduce((sum, e) => sum + Number(e.offset), 0);
      return { all: records.length, of: records.filter((r) => ids.includes(r.key ?? '')).length, offsets };
    };
    const early = await placeAndFinish(stack, 60);
    await stack.start('order', '1');
    // Replica 1 read the partitions it was given once; stopped, it misses what replica 0 commits
    // on them meanwhile.
    const given = stack.assigned('order', '1');
    expect(given).toHaveLength(3);
    expect(offsetsRead(stack, 'order.state')).toBeGreaterThanOrEqual((await recordsOfReplica1()).all);
    expect(await stack.stop('order', '1')).toBe(0);
    const late = await placeAndFinish(stack, 20, '0', 'late');

    await stack.start('order', '1');
    // Given back the partitions whose state it holds (sticky), it reads their tail: the late
    // orders' rows (and their commit markers), not the whole of them.
    expect(stack.assigned('order', '1')).toEqual(given);
    const tail = offsetsRead(stack, 'order.state');
    const now = await recordsOfReplica1(late);
    expect(tail).toBeGreaterThanOrEqual(now.of);
    expect(tail).toBeLessThan(now.offsets / 2);
    const total = (await stack.readTopic('order.state')).length;
    for (const id of [early[0]!, late[late.length - 1]!]) {
      expect((await stack.http('order', `/orders/${id}`, undefined, '1')).body.status).toBe('CONFIRMED');
    }
    console.log(`restart read ${tail} of the ${now.offsets} offsets of its partitions (order.state: ${total} records)`);

    // Lost: rebuilt from the whole topic.
    await stack.stop('order', '1', 'SIGKILL');
    rmSync(stack.stateDir('order', '1'), { recursive: true, force: true });
    await stack.start('order', '1');
    expect(offsetsRead(stack, 'order.state')).toBeGreaterThanOrEqual((await recordsOfReplica1()).all);
    expect((await stack.http('order', `/orders/${early[1]}`, undefined, '1')).body.status).toBe('CONFIRMED');

    // Corrupt: refused as a store, deleted, rebuilt.
    await stack.stop('order', '1', 'SIGKILL');
    writeFileSync(join(stack.stateDir('order', '1'), 'data.mdb'), Buffer.alloc(64 * 1024, 7));
    await stack.start('order', '1');
    const log = readFileSync(join(stack.logDir, 'order-1.log'), 'utf8');
    expect(log).toMatch(/could not be opened: deleted, to be rebuilt from the changelog/);
    expect(offsetsRead(stack, 'order.state')).toBeGreaterThanOrEqual((await recordsOfReplica1()).all);
    expect((await stack.http('order', `/orders/${late[0]}`, undefined, '1')).body.status).toBe('CONFIRMED');
    await stack.stop('order', '1');
  }, 240_000);

  test("how far the input is processed is the state's: the group's offsets set back to the start change nothing", async () => {
    const before = await placeAndFinish(stack, 5);
    expect(await stack.stop('stock')).toBe(0);
    // Stock's group forgets where it was: every topic it consumes from its first offset.
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const groupId = `${stack.namespace}stock`;
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId })) {
        await admin.setOffsets({
          groupId,
          topic,
          partitions: partitions.map(({ partition }) => ({ partition, offset: '0' })),
        });
      }
    } finally {
      await admin.disconnect();
    }
    await stack.start('stock');
    const after = await placeAndFinish(stack, 3);

    // Everything stock had consumed is fetched again and skipped: each order answered once.
    const answers = (await stack.readTopic('stock.checked')).map((r) => r.key);
    for (const id of [...before, ...after])
      expect({ id, answers: answers.filter((a) => a === id).length }).toEqual({ id, answers: 1 });
    const skipped = stack
      .logLines('stock')
      .filter((l) => l.msg === 'messages the state says are processed: skipped')
      .reduce((sum, l) => sum + Number(l.skipped), 0);
    expect(skipped).toBeGreaterThanOrEqual(before.length);

    // The group's offsets follow what was committed, outside the transactions, within seconds.
    const topic = stack.topic('stock.check.request');
    await eventually(
      "stock's group offsets at the end of stock.check.request",
      async () => {
        const admin = stack.kafka.admin();
        await admin.connect();
        try {
          const ends = await admin.fetchTopicOffsets(topic);
          const [committed] = await admin.fetchOffsets({ groupId: `${stack.namespace}stock`, topics: [topic] });
          const at = (partition: number) => committed?.partitions.find((p) => p.partition === partition)?.offset;
          if (ends.every((e) => e.offset === e.low || at(e.partition) === e.offset)) return true;
          throw new Error(`ends ${JSON.stringify(ends)}, committed ${JSON.stringify(committed?.partitions)}`);
        } finally {
          await admin.disconnect();
        }
      },
      15_000,
    );
  }, 120_000);
});

describe('retention', () => {
  const RETENTION_S = 6;
  const everyone = { ORDER_RETENTION: `${RETENTION_S}s` };
  const stack = new Stack({
    env: {
      order: everyone,
      stock: { ...everyone, STOCK_CATALOG: JSON.stringify({ PEN: { quantity: 1_000, price: 100 } }) },
      billing: { ...everyone, BILLING_ACCOUNTS: JSON.stringify({ alice: 100_000 }) },
      notification: everyone,
    },
  });
  beforeAll(() => stack.startAll(), 120_000);
  afterAll(() => stack.stopAll());

  test('a finished order is tombstoned on every state topic, its GET says retired, a late duplicate changes nothing', async () => {
    const ids = await placeAndFinish(stack, 3);
    const retired = await eventually(
      'the orders to be retired',
      async () => {
        const answers = await Promise.all(ids.map((id) => stack.http('order', `/orders/${id}`)));
        return answers.every((a) => a.status === 404) ? answers : undefined;
      },
      (RETENTION_S + 20) * 1_000,
    );
    for (const { body } of retired) expect(body.message).toMatch(/was retired at \d{4}-\d\d-\d\dT.*ORDER_RETENTION/);

    await eventually('every row of the orders to be tombstoned', async () => {
      const topics = await Promise.all(
        (['order.state', 'stock.state', 'billing.state', 'notification.state'] as const).map((t) => stack.readTopic(t)),
      );
      // The last record of each row of the orders, on each state topic.
      const last = new Map<string, string | null>();
      topics.forEach((records, t) => {
        for (const r of records) if (r.key && ids.some((id) => r.key!.endsWith(id))) last.set(`${t}/${r.key}`, r.value);
      });
      // Each order has rows in every service: its saga, reservation, SKU hold, payment, credit hold, notification.
      if (last.size < ids.length * 6) return undefined;
      return [...last.values()].every((value) => value === null) ? true : undefined;
    });

    // The late duplicate of an order.placed: recognised as older than the retention, not a new order.
    const placed = (await stack.readTopic('order.placed')).find((r) => r.key === ids[0])!;
    await stack.produce('order.placed', [{ key: placed.key, value: placed.value, headers: placed.headers }]);
    const dead = await eventually('the duplicate to be dead-lettered', async () => {
      const records = await stack.readTopic('order.placed.dlt');
      return records.find((r) => r.key === ids[0]);
    });
    expect(dead.headers['dlt-kind']).toBe('expired');
    expect(dead.headers['dlt-reason']).toMatch(/older than the state's retention/);
    await sleep(500);
    const again = await stack.http('order', `/orders/${ids[0]}`);
    expect(again.status).toBe(404);
    expect(again.body.message).toMatch(/retired/);
    expect((await stack.readTopic('order.state')).filter((r) => r.key === ids[0]).at(-1)!.value).toBeNull();

    // The same Idempotency-Key again is refused while the order is known as retired.
    const keyed = await stack.placeOrder({ customerId: 'alice', items: [PEN] }, { 'idempotency-key': 'k-1' });
    expect(keyed.status).toBe(202);
    await stack.finished(keyed.body.orderId);
    await eventually(
      'the keyed order to be retired',
      async () => ((await stack.http('order', `/orders/${keyed.body.orderId}`)).status === 404 ? true : undefined),
      (RETENTION_S + 20) * 1_000,
    );
    const reused = await stack.placeOrder({ customerId: 'alice', items: [PEN] }, { 'idempotency-key': 'k-1' });
    expect(reused.status).toBe(409);
    expect(reused.body.message).toMatch(/retired at .*Idempotency-Key/);
  }, 180_000);
});
