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
