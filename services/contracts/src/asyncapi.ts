/**
 * The AsyncAPI 3.0 document of every topic and message, built from the one topic list and the
 * one set of message schemas (the same schemas the consumers check): written to docs/ by
 * `npm run generate` (kept in step by tests/generated.test.ts) and served by the Order API at
 * GET /asyncapi.json, as its OpenAPI document is at GET /openapi.json.
 */
import {
  DEAD_LETTER_HEADERS,
  deadLetterTopicOf,
  envelopeSchema,
  MESSAGE_HEADERS,
  REDRIVE_HEADERS,
  REDRIVE_MARKER_HEADERS,
  SCHEMA_VERSION,
} from '@ordersaga/runtime';
import { COMPONENT_NAMES, COMPONENTS, type ComponentSpec } from './components.js';
import { PAYLOADS } from './messages.js';
import { DEFAULT_PARTITIONS, SAGA_TOPICS, STATE_TOPICS, type SagaTopic, type TopicSpec } from './topics.js';

/** The version of the platform's APIs: this document's and the Order API's OpenAPI document's. */
export const API_VERSION = '0.1.0';

/** Where `npm run generate` writes the document, from the repository's root. */
export const ASYNCAPI_FILE = 'docs/asyncapi.json';

const KAFKA_BINDING = '0.5.0';
const ref = (path: string) => ({ $ref: `#/${path}` });
/** A TypeBox schema as plain JSON Schema (TypeBox keeps its own marks under symbols, which JSON drops). */
const plain = (schema: unknown) => JSON.parse(JSON.stringify(schema)) as object;
const headersOf = (docs: Record<string, string>, required: readonly string[]) => ({
  type: 'object',
  properties: Object.fromEntries(
    Object.entries(docs).map(([name, description]) => [name, { type: 'string', description }]),
  ),
  required,
  additionalProperties: { type: 'string' },
});
const keyOf = (spec: TopicSpec) => ({
  type: 'string',
  description: spec.key
    ? `the ${spec.key}: the one owner of its partition decides`
    : 'the orderId: one saga stays on one partition',
});

/** Who writes and who reads each topic: the registry's services by the topic list, the controller by its own list. */
function partiesOf(topic: string, spec: TopicSpec): { senders: string[]; receivers: string[] } {
  const declared = (c: string) => (COMPONENTS[c as keyof typeof COMPONENTS] as ComponentSpec).kafka;
  const controllers = COMPONENT_NAMES.filter((c) => declared(c));
  return {
    senders: [spec.producer, ...controllers.filter((c) => declared(c)!.writes.includes(topic))],
    receivers: [
      ...new Set([
        ...spec.consumers,
        ...(spec.readers ?? []),
        ...controllers.filter((c) => declared(c)!.reads.includes(topic)),
      ]),
    ],
  };
}

export function asyncApiDocument(): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const operate = (action: 'send' | 'receive', who: string, channel: string, kinds: readonly string[]) => {
    operations[`${who}.${action}.${channel}`] = {
      action,
      summary: `${who} ${action === 'send' ? 'writes' : 'reads'} ${channel}`,
      channel: ref(`channels/${channel}`),
      messages: kinds.map((message) => ref(`channels/${channel}/messages/${message}`)),
    };
  };
  /** A topic and its messages, and the operations of who writes them and who reads them. */
  const topic = (
    address: string,
    description: string,
    kinds: readonly string[],
    on: { partitions: number; cleanup: 'delete' | 'compact'; senders: readonly string[]; receivers: readonly string[] },
  ) => {
    channels[address] = {
      address,
      description,
      messages: Object.fromEntries(kinds.map((message) => [message, ref(`components/messages/${message}`)])),
      bindings: {
        kafka: {
          topic: address,
          partitions: on.partitions,
          topicConfiguration: { 'cleanup.policy': [on.cleanup] },
          bindingVersion: KAFKA_BINDING,
        },
      },
    };
    for (const who of on.senders) operate('send', who, address, kinds);
    for (const who of on.receivers) operate('receive', who, address, kinds);
  };

  for (const [name, spec] of Object.entries(SAGA_TOPICS) as Array<[SagaTopic, TopicSpec]>) {
    messages[name] = {
      name,
      title: name,
      summary: spec.description,
      contentType: 'application/json',
      // A redriven message (the ordersaga CLI) also says where it came from and why it was dead-lettered.
      headers: headersOf({ ...MESSAGE_HEADERS, ...REDRIVE_HEADERS }, Object.keys(MESSAGE_HEADERS)),
      payload: plain(envelopeSchema(name, PAYLOADS[name])),
      bindings: { kafka: { key: keyOf(spec), bindingVersion: KAFKA_BINDING } },
    };
    topic(name, spec.description, [name], {
      partitions: DEFAULT_PARTITIONS,
      cleanup: 'delete',
      ...partiesOf(name, spec),
    });

    // Its dead letters: what its consumers could never process, as it was, with why.
    const deadLetter = `${name}.dead-letter`;
    messages[deadLetter] = {
      name: deadLetter,
      title: `${name}, dead-lettered`,
      summary: `A ${name} message its consumer could never process: its key, value and headers as they were, and why.`,
      headers: headersOf(
        { ...MESSAGE_HEADERS, ...DEAD_LETTER_HEADERS, ...REDRIVE_HEADERS },
        Object.keys(DEAD_LETTER_HEADERS),
      ),
      payload: { description: `the original value, as it was read from ${name} (not always valid JSON)` },
      bindings: { kafka: { key: keyOf(spec), bindingVersion: KAFKA_BINDING } },
    };
    // And the marker of a redrive: that dead letter was put back on its topic, once.
    const marker = `${name}.redrive-marker`;
    messages[marker] = {
      name: marker,
      title: `${name}, a dead letter redriven`,
      summary: `The ordersaga CLI put a dead letter of ${name} back on it (ordersaga dlt redrive), once.`,
      headers: headersOf(REDRIVE_MARKER_HEADERS, Object.keys(REDRIVE_MARKER_HEADERS)),
      payload: { type: 'null' },
      bindings: { kafka: { key: keyOf(spec), bindingVersion: KAFKA_BINDING } },
    };
    topic(deadLetterTopicOf(name), `Dead letters of ${name}, with the reason in their headers.`, [deadLetter, marker], {
      partitions: 1,
      cleanup: 'delete',
      senders: spec.consumers,
      receivers: [],
    });
  }

  for (const [name, spec] of Object.entries(STATE_TOPICS) as Array<[string, TopicSpec]>) {
    const row = `${name}.row`;
    messages[row] = {
      name: row,
      title: `a row of ${name}`,
      summary: `${spec.description} A row is the ${spec.producer} service's own; a null value deletes it.`,
      contentType: 'application/json',
      payload: { type: ['object', 'null'], description: `a row of the ${spec.producer} service's state` },
      bindings: { kafka: { key: { type: 'string' }, bindingVersion: KAFKA_BINDING } },
    };
    topic(name, spec.description, [row], {
      partitions: DEFAULT_PARTITIONS,
      cleanup: 'compact',
      ...partiesOf(name, spec),
    });
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'ordersaga',
      version: API_VERSION,
      description:
        `The Kafka topics of the order saga and the messages on them. Every saga message is a JSON ` +
        `envelope (schema version ${SCHEMA_VERSION}) keyed by its orderId, unless its topic says another key. ` +
        'Topic names here are logical: a deployment prefixes each with its ORDERSAGA_NAMESPACE.',
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:9092',
        protocol: 'kafka',
        description: 'The single-node Kafka that npm start runs (scripts/kafka.sh)',
      },
      strimzi: {
        host: 'ordersaga-kafka-bootstrap:9093',
        protocol: 'kafka-secure',
        description: "A Strimzi cluster's TLS listener, as the Helm chart uses it (kafka.bootstrap)",
      },
    },
    channels,
    operations,
    components: { messages },
  };
}

/** The document as docs/asyncapi.json holds it. */
export const asyncApiJson = () => `${JSON.stringify(asyncApiDocument(), null, 2)}\n`;
