import { trace } from '@opentelemetry/api';
import type { KafkaMessage, Message } from 'kafkajs';
import { currentContext, type Logger } from './context.js';
import { PoisonMessageError } from './envelope.js';
import { DEAD_LETTER_KINDS, type DeadLetterKind } from './metrics.js';
import { deadLetterTopicOf, type DeadLetterTopic, type SagaTopic } from './contract.js';
import { markFailed } from './tracing.js';

/** A message that can never be processed, and why. */
export interface Unprocessable {
  readonly topic: SagaTopic;
  readonly partition: number;
  readonly message: KafkaMessage;
  /** Its headers, as strings. */
  readonly headers: Record<string, string>;
  readonly kind: DeadLetterKind;
  readonly error: unknown;
  /** What failed, when it was not the message itself (a side effect). */
  readonly what?: string;
}

/** What a dead-letter record adds to the original headers (the AsyncAPI document lists them). */
export const DEAD_LETTER_HEADERS = {
  'dlt-reason': 'why it can never be processed',
  'dlt-kind': `one of ${DEAD_LETTER_KINDS.join(', ')}`,
  'dlt-topic': 'the topic it was read from',
  'dlt-partition': 'its partition there',
  'dlt-offset': 'its offset there',
  'dlt-group': 'the consumer group that gave up on it',
  'dlt-at': 'when (ISO 8601)',
} as const satisfies Record<string, string>;

/**
 * The dead-letter record of a message that can never be processed: its original key, value and
 * headers, plus `dlt-reason`, `dlt-kind`, `dlt-topic`, `dlt-partition`, `dlt-offset`, `dlt-group`
 * and `dlt-at`. The active span is marked failed, and a log line says where it went and why.
 */
export function deadLetterRecord(
  { topic, partition, message, headers, kind, error, what }: Unprocessable,
  groupId: string,
  log: Logger,
): { topic: DeadLetterTopic; message: Message } {
  const reason = `${what ? `${what}: ` : ''}${error instanceof Error ? error.message : String(error)}`;
  const dlt = deadLetterTopicOf(topic);
  const span = trace.getActiveSpan();
  if (span) markFailed(span, error, { 'ordersaga.dead_letter.topic': dlt, 'ordersaga.dead_letter.kind': kind });
  log.warn(
    {
      ...currentContext(),
      topic,
      partition,
      offset: message.offset,
      kind,
      reason,
      poison: error instanceof PoisonMessageError,
    },
    `message dead-lettered to ${dlt}`,
  );
  return {
    topic: dlt,
    message: {
      key: message.key,
      value: message.value,
      headers: {
        ...headers,
        'dlt-reason': reason,
        'dlt-kind': kind,
        'dlt-topic': topic,
        'dlt-partition': String(partition),
        'dlt-offset': message.offset,
        'dlt-group': groupId,
        'dlt-at': new Date().toISOString(),
      },
    },
  };
}

/** What a redrive adds to the record it puts back on its topic (and a dead letter of it keeps). */
export const REDRIVE_HEADERS = {
  'dlt-earlier-reasons': 'why it was dead-lettered before, each time, oldest first (a JSON array of strings)',
  'dlt-redriven-from': 'the dead letter it was put back from: <dead-letter topic>/<partition>/<offset>',
} as const satisfies Record<string, string>;

/** The marker a redrive leaves in a dead-letter topic: that dead letter was put back, once. */
export const REDRIVE_MARKER_HEADERS = {
  'dlt-redrive-of': 'the dead letter of this topic that was put back on its topic: <partition>/<offset>',
  'dlt-redriven-at': 'when (ISO 8601)',
} as const satisfies Record<string, string>;

/** A dead letter as read from its topic. */
export interface DeadLetter {
  /** The dead-letter topic's name as the cluster knows it (with the namespace). */
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** The id of a dead letter, as tools name it: <dead-letter topic>/<partition>/<offset>. */
export const deadLetterId = (d: Pick<DeadLetter, 'topic' | 'partition' | 'offset'>) =>
  `${d.topic}/${d.partition}/${d.offset}`;

/** Every reason a record was dead-lettered for, oldest first. */
export function reasonsOf(headers: Record<string, string>): string[] {
  const earlier = headers['dlt-earlier-reasons'];
  return [
    ...(earlier ? (JSON.parse(earlier) as string[]) : []),
    ...(headers['dlt-reason'] ? [headers['dlt-reason']] : []),
  ];
}

/**
 * A redrive of a dead letter: its original key, value and headers back on the topic and the
 * partition it was read from (so a saga's messages stay on its partition), its reasons kept; and
 * the marker that says so in the dead-letter topic. Written in one transaction, the two make the
 * redrive happen once: a dead letter with a marker is not redriven again.
 */
export function redriveRecords(
  deadLetter: DeadLetter,
  physicalTopicOf: (logical: string) => string,
  now: Date,
): { back: { topic: string; partition: number; message: Message }; marker: { partition: number; message: Message } } {
  const { headers } = deadLetter;
  const source = headers['dlt-topic'];
  const partition = Number(headers['dlt-partition']);
  if (!source || !Number.isInteger(partition)) {
    throw new Error(`${deadLetterId(deadLetter)} is not a dead letter (no dlt-topic and dlt-partition headers)`);
  }
  const original = Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith('dlt-')));
  return {
    back: {
      topic: physicalTopicOf(source),
      partition,
      message: {
        key: deadLetter.key,
        value: deadLetter.value,
        headers: {
          ...original,
          'dlt-earlier-reasons': JSON.stringify(reasonsOf(headers)),
          'dlt-redriven-from': deadLetterId(deadLetter),
        },
      },
    },
    marker: {
      partition: deadLetter.partition,
      message: {
        key: deadLetter.key,
        value: null,
        headers: {
          'dlt-redrive-of': `${deadLetter.partition}/${deadLetter.offset}`,
          'dlt-redriven-at': now.toISOString(),
        },
      },
    },
  };
}
