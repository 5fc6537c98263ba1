/**
 * The runtime's Kafka client keeps where the coordinators are (coordinator-cache.ts): a
 * transaction with consumed offsets makes its five requests and no FindCoordinator among them,
 * and when the broker restarts (every coordinator gone, then loading again) the transactions
 * go on once it is back. A broker of its own (scripts/kafka.sh), restarted with its data.
 */
import type { Producer } from 'kafkajs';
import { createKafka, createLogger } from '@ordersaga/runtime';
import { ownBroker } from './support/own-broker.js';

const kafkaSh = ownBroker('coordinator', 29700);

const TOPIC = 'coordinator-cache';
let brokers: string[];
let producer: Producer;
const requests = new Map<string, number>();

/** One transaction: a record, the consumed offset, the commit. */
async function transaction(n: number): Promise<void> {
  const tx = await producer.transaction();
  try {
    await tx.send({ topic: TOPIC, messages: [{ value: String(n) }] });
    await tx.sendOffsets({
      consumerGroupId: `${TOPIC}-group`,
      topics: [{ topic: TOPIC, partitions: [{ partition: 0, offset: String(n) }] }],
    });
    await tx.commit();
  } catch (err) {
    await tx.abort().catch(() => undefined);
    throw err;
  }
}

beforeAll(async () => {
  brokers = [/KAFKA_BROKERS=(\S+)/.exec(kafkaSh('start'))![1]!];
  const kafka = createKafka('coordinator-cache-test', brokers, createLogger('coordinator-cache-test'));
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] });
  await admin.disconnect();
  producer = kafka.producer({ transactionalId: `${TOPIC}-tx`, idempotent: true, maxInFlightRequests: 1 });
  producer.on(producer.events.REQUEST, ({ payload }) =>
    requests.set(payload.apiName, (requests.get(payload.apiName) ?? 0) + 1),
  );
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  kafkaSh('stop');
});

/** Transactions until `count` have committed; the errors on the way are the broker's own. */
async function commitWithin(count: number, first: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let committed = 0;
  let lastError: unknown;
  for (let n = first; committed < count; n++) {
    if (Date.now() > deadline) throw new Error(`${committed} of ${count} transactions committed: ${String(lastError)}`);
    try {
      await transaction(n);
      committed++;
    } catch (err) {
      // A fresh broker's group coordinator answers NOT_COORDINATOR until __consumer_offsets has
      // loaded, and kafkajs 2.2.4 does not retry that type (it expects NOT_COORDINATOR): the
      // product's Transactions retries the whole transaction, and so does this.
      lastError = err;
    }
  }
  return committed;
}

test('a transaction with offsets asks for no coordinator: five requests, not nine', async () => {
  await commitWithin(1, 0, 60_000);
  requests.clear();
  for (let n = 1; n <= 50; n++) await transaction(n);
  const perTransaction = Object.fromEntries([...requests].map(([api, count]) => [api, count / 50]));
  // AddPartitionsToTxn may be sent twice: one transactional id back to back finds its last
  // transaction's markers still being written (CONCURRENT_TRANSACTIONS) and tries again.
  expect(perTransaction).toMatchObject({
    Produce: 1,
    AddOffsetsToTxn: 1,
    TxnOffsetCommit: 1,
    EndTxn: 1,
  });
  // Asked again at most once per COORDINATOR_TTL_MS, for each of the two coordinators.
  expect(requests.get('GroupCoordinator') ?? 0).toBeLessThanOrEqual(4);
});

test('the broker restarted, its coordinators moved and loading: transactions go on once it is back', async () => {
  kafkaSh('stop');
  expect(kafkaSh('start', { KAFKA_KEEP_DATA: '1' })).toContain(brokers[0]);
  const committed = await commitWithin(10, 100, 60_000);
  expect(committed).toBe(10);
});
