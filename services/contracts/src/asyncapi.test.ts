/**
 * The AsyncAPI document, read by the AsyncAPI initiative's own parser (@asyncapi/parser, which
 * validates it against the 3.0 schema and its rules), says what the topic list says.
 */
import { Parser } from '@asyncapi/parser';
import { deadLetterTopicOf } from '@ordersaga/runtime';
import { asyncApiJson } from './asyncapi.js';
import { SAGA_TOPICS, STATE_TOPICS, type TopicSpec } from './topics.js';

const parsed = async () => {
  const { document, diagnostics } = await new Parser().parse(asyncApiJson());
  return { document: document!, diagnostics };
};

test('the AsyncAPI parser accepts the document: no error, no warning', async () => {
  const { document, diagnostics } = await parsed();
  // Severity 0 is an error, 1 a warning; 2 and 3 are hints (such as "3.1.0 exists").
  expect(
    diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`),
  ).toEqual([]);
  expect(document.version()).toBe('3.0.0');
});

test('a channel per topic and dead-letter topic, with who writes and who reads it', async () => {
  const { document } = await parsed();
  const addresses = document
    .channels()
    .all()
    .map((c) => c.address());
  const saga = Object.entries(SAGA_TOPICS) as Array<[string, TopicSpec]>;
  const state = Object.entries(STATE_TOPICS) as Array<[string, TopicSpec]>;
  expect(addresses.sort()).toEqual(
    [...saga.flatMap(([t]) => [t, deadLetterTopicOf(t as never)]), ...state.map(([t]) => t)].sort(),
  );
  const operations = new Set(
    document
      .operations()
      .all()
      .map((o) => o.id()),
  );
  for (const [topic, spec] of [...saga, ...state]) {
    expect(operations).toContain(`${spec.producer}.send.${topic}`);
    for (const consumer of [...spec.consumers, ...(spec.readers ?? [])])
      expect(operations).toContain(`${consumer}.receive.${topic}`);
  }
  for (const [topic, spec] of saga)
    for (const consumer of spec.consumers)
      expect(operations).toContain(`${consumer}.send.${deadLetterTopicOf(topic as never)}`);
  // A saga message's payload is the envelope, its type the topic.
  const placed = document
    .messages()
    .all()
    .find((m) => m.id() === 'order.placed')!;
  expect(placed.payload()!.properties()!.type!.const()).toBe('order.placed');
  expect(placed.payload()!.required()).toEqual(expect.arrayContaining(['id', 'orderId', 'correlationId', 'payload']));
});
