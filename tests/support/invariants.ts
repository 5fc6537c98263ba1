/**
 * The invariants of the design brief, checked from the outside: HTTP APIs and Kafka topics.
 */
import { SAGA_TOPICS } from '@ordersaga/contracts';
import { deadLetterTopicOf, type SagaTopic } from '@ordersaga/runtime';
import { eventually, type Stack, type TopicRecord } from './stack.js';

/** The attempt of the saga a record belongs to. */
const attemptOf = (record: TopicRecord) => (record.json?.attempt as number | undefined) ?? 1;

export interface World {
  readonly catalog: Record<string, { quantity: number; price: number }>;
  readonly accounts: Record<string, number>;
}

/**
 * Waits for every order ever placed in this stack (every key of order.placed) to finish, then
 * checks the five invariants over all of them. A retried order is checked over its attempts:
 * each ended once (the earlier ones failed) and was told of once. Returns the orders.
 */
export async function expectInvariants(stack: Stack, world: World, timeoutMs = 60_000) {
  const orderIds = [...new Set((await stack.readTopic('order.placed')).map((r) => r.key!))];
  // 1. Every accepted order reaches exactly one terminal state within a bound.
  const orders = await Promise.all(orderIds.map((id) => stack.finished(id, timeoutMs)));
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  const failed = orders.filter((o) => o.status === 'FAILED');
  expect(confirmed.length + failed.length).toBe(orderIds.length);

  const terminalEvents = [
    ...(await stack.readTopicUntil('order.confirmed', 'the order.confirmed of every confirmed order', (records) =>
      confirmed.every((o) => records.some((r) => r.key === o.orderId)),
    )),
    ...(await stack.readTopicUntil('order.failed', 'the order.failed of every failed order', (records) =>
      failed.every((o) => records.some((r) => r.key === o.orderId)),
    )),
  ];
  for (const order of orders) {
    const events = terminalEvents.filter((r) => r.key === order.orderId).sort((a, b) => attemptOf(a) - attemptOf(b));
    expect(events.map((e) => [attemptOf(e), e.json.type])).toEqual([
      ...Array.from({ length: order.attempt - 1 }, (_, i) => [i + 1, 'order.failed']),
      [order.attempt, order.status === 'CONFIRMED' ? 'order.confirmed' : 'order.failed'],
    ]);
  }

  // 2. Stock is conserved, and a failed order holds nothing (no order is in flight now).
  const soldBySku = new Map<string, number>();
  for (const order of confirmed) {
    for (const line of order.lines) soldBySku.set(line.sku, (soldBySku.get(line.sku) ?? 0) + line.quantity);
  }
  const levels = await eventually('stock to settle', async () => {
    const { body } = await stack.http('stock', '/stock');
    return (body as any[]).every((l) => l.reserved === 0) ? (body as any[]) : undefined;
  });
  for (const level of levels) {
    expect(level.initial).toBe(world.catalog[level.sku]!.quantity);
    expect(level.available + level.reserved + level.sold).toBe(level.initial + level.restocked);
    expect({ sku: level.sku, sold: level.sold }).toEqual({ sku: level.sku, sold: soldBySku.get(level.sku) ?? 0 });
  }

  // 3. A confirmed order is charged exactly once (its authorization captured); a failed order
  // has no net charge (nothing captured, nothing still held).
  const chargedByCustomer = new Map<string, number>();
  for (const order of confirmed) {
    chargedByCustomer.set(order.customerId, (chargedByCustomer.get(order.customerId) ?? 0) + order.total);
    const payment = await eventually(`the payment of ${order.orderId} to be captured`, async () => {
      const { body } = await stack.http('billing', `/payments/${order.orderId}`);
      return body?.status === 'captured' ? body : undefined;
    });
    expect(payment).toMatchObject({ status: 'captured', amount: order.total });
  }
  for (const order of failed) {
    const { status, body: payment } = await stack.http('billing', `/payments/${order.orderId}`);
    if (status === 200) expect(['declined', 'cancelled', 'voided']).toContain(payment.status);
  }
  const approvals = (await stack.readTopic('payment.result')).filter((r) => r.json?.payload?.result === 'approved');
  for (const order of confirmed) {
    expect(approvals.filter((r) => r.key === order.orderId && attemptOf(r) === order.attempt)).toHaveLength(1);
  }
  for (const customerId of Object.keys(world.accounts)) {
    const { body: account } = await stack.http('billing', `/accounts/${customerId}`);
    expect({ customerId, held: account.held, charged: account.charged }).toEqual({
      customerId,
      held: 0,
      charged: chargedByCustomer.get(customerId) ?? 0,
    });
  }

  // 4. Exactly one customer notification per terminal order (per attempt of a retried one).
  const runs = orders.reduce((sum, order) => sum + order.attempt, 0);
  const notifications = await eventually('a notification per order', async () => {
    const { body } = await stack.http('notification', '/notifications?limit=1000');
    const mine = (body as any[]).filter((n) => orderIds.includes(n.orderId));
    return mine.length >= runs ? mine : undefined;
  });
  expect(new Set(notifications.map((n) => `${n.orderId}@${n.attempt ?? 1}`)).size).toBe(runs);
  expect(notifications).toHaveLength(runs);

  // 5. Nothing dropped silently: in this world no message was unprocessable.
  for (const topic of Object.keys(SAGA_TOPICS) as SagaTopic[]) {
    expect({ topic, deadLetters: (await stack.readTopic(deadLetterTopicOf(topic))).length }).toEqual({
      topic,
      deadLetters: 0,
    });
  }
  return { orders, confirmed, failed };
}
