/**
 * Poison messages: on every consumed topic, bad JSON and a wrong schema land in the topic's
 * dead-letter topic with the reason and the original headers, and the consumers carry on.
 * Everything written meanwhile is what the AsyncAPI document says it is.
 */
import { Ajv } from 'ajv';
import { asyncApiDocument, SAGA_TOPICS } from '@ordersaga/contracts';
import { deadLetterTopicOf, type SagaTopic } from '@ordersaga/runtime';
import { eventually, Stack } from './support/stack.js';

const stack = new Stack({
  env: {
    stock: { STOCK_CATALOG: JSON.stringify({ MUG: { quantity: 10, price: 900 } }) },
    billing: { BILLING_ACCOUNTS: JSON.stringify({ alice: 10_000 }) },
  },
});

beforeAll(() => stack.startAll());
afterAll(() => stack.stopAll());

const consumed = Object.entries(SAGA_TOPICS) as Array<[SagaTopic, { consumers: readonly string[] }]>;

test.each(consumed)('poison on %s goes to its dead-letter topic with the reason', async (topic, spec) => {
  const key = `poison-${topic}`;
  const wrongSchema = JSON.stringify({ id: 'x', type: topic, version: 1, orderId: key, payload: { nonsense: true } });
  await stack.produce(topic, [
    { key, value: '{"this is": not json', headers: { 'x-origin': 'test-bad-json' } },
    { key, value: wrongSchema, headers: { 'x-origin': 'test-wrong-schema' } },
  ]);

  // One dead letter per poison message and per consumer group of the topic.
  const expected = 2 * spec.consumers.length;
  const dead = await eventually(`${expected} dead letters in ${deadLetterTopicOf(topic)}`, async () => {
    const records = await stack.readTopic(deadLetterTopicOf(topic));
    return records.length >= expected ? records : undefined;
  });
  expect(dead).toHaveLength(expected);
  for (const record of dead) {
    expect(record.key).toBe(key);
    expect(record.headers['dlt-topic']).toBe(topic);
    expect(record.headers['dlt-kind']).toBe('poison');
    expect(record.headers['dlt-group']).toMatch(
      new RegExp(`^${stack.namespace.replace('.', '\\.')}(${spec.consumers.join('|')})$`),
    );
  }
  const badJson = dead.find((r) => r.headers['x-origin'] === 'test-bad-json')!;
  expect(badJson.headers['dlt-reason']).toMatch(/^invalid JSON/);
  expect(badJson.value).toBe('{"this is": not json');
  const wrong = dead.find((r) => r.headers['x-origin'] === 'test-wrong-schema')!;
  expect(wrong.headers['dlt-reason']).toMatch(/^schema violation/);
  expect(wrong.value).toBe(wrongSchema);
});

test('a reply for an order that has no saga is dead-lettered as a handler error', async () => {
  const stray = {
    id: 'stray-1',
    type: 'payment.result',
    version: 1,
    orderId: 'no-such-order',
    correlationId: 'c-stray',
    causationId: null,
    timestamp: new Date().toISOString(),
    payload: { result: 'approved', paymentId: 'pay-x', amount: 1 },
  };
  await stack.produce('payment.result', [{ key: 'no-such-order', value: JSON.stringify(stray) }]);
  const record = await eventually('the stray reply in payment.result.dlt', async () =>
    (await stack.readTopic('payment.result.dlt')).find((r) => r.key === 'no-such-order'),
  );
  expect(record.headers['dlt-kind']).toBe('handler-error');
  expect(record.headers['dlt-reason']).toBe('payment.result for order no-such-order, which has no saga');
});

test('after all that poison, the next good order goes through', async () => {
  const { body } = await stack.placeOrder({ customerId: 'alice', items: [{ sku: 'MUG', quantity: 2 }] });
  const order = await stack.finished(body.orderId);
  expect(order.status).toBe('CONFIRMED');
  const notification = await eventually('the notification', async () => {
    const { status, body: n } = await stack.http('notification', `/notifications/${order.orderId}`);
    return status === 200 ? n : undefined;
  });
  expect(notification.outcome).toBe('confirmed');
});

test('the AsyncAPI document describes what was written: every message and dead letter of this run', async () => {
  const doc = asyncApiDocument() as { components: { messages: Record<string, { payload: object; headers: object }> } };
  const ajv = new Ajv({ strict: false, allErrors: true });
  const check = (schema: object, value: unknown) => {
    const validate = ajv.compile(schema);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
  // What this file's tests wrote themselves (the poison) is not the services'.
  const ours = (key: string | null) => key?.startsWith('poison-') || key === 'no-such-order';
  let messages = 0;
  let deadLetters = 0;
  for (const topic of Object.keys(SAGA_TOPICS) as SagaTopic[]) {
    const { payload, headers } = doc.components.messages[topic]!;
    for (const record of (await stack.readTopic(topic)).filter((r) => !ours(r.key))) {
      messages++;
      expect({ topic, offset: record.offset, errors: check(payload, record.json) }).toEqual({
        topic,
        offset: record.offset,
        errors: [],
      });
      expect({ topic, offset: record.offset, errors: check(headers, record.headers) }).toEqual({
        topic,
        offset: record.offset,
        errors: [],
      });
    }
    const deadLetter = doc.components.messages[`${topic}.dead-letter`]!;
    for (const record of await stack.readTopic(deadLetterTopicOf(topic))) {
      deadLetters++;
      expect({ topic, errors: check(deadLetter.headers, record.headers) }).toEqual({ topic, errors: [] });
    }
  }
  // The good order's saga wrote a message on most saga topics; the poison a dead letter on each.
  expect(messages).toBeGreaterThan(10);
  expect(deadLetters).toBeGreaterThan(Object.keys(SAGA_TOPICS).length);
});
