import type { Span } from '@opentelemetry/api';
import type { Message } from 'kafkajs';
import { encode, type Outgoing } from './envelope.js';
import { envelopeAttributes, newTraceparent, startProducerSpan, TRACEPARENT } from './tracing.js';

/**
 * A saga message as a Kafka record, in a producer span of its own (ended by the sender once the
 * record is committed or acknowledged): keyed by orderId (or the key it was re-keyed by), the envelope as its value, the span's
 * trace context and the envelope's ids in its headers. The processor and the Publisher both send
 * their messages this way. A message that starts a saga (`startsTrace`) with no trace to continue
 * and no SDK recording gets a new trace id, so every saga has one.
 */
export function outgoingRecord(
  out: Outgoing,
  destination: string,
  { startsTrace = false } = {},
): { message: Message; span: Span } {
  const { span, headers } = startProducerSpan(
    { topic: out.topic, destination, key: out.key ?? out.envelope.orderId },
    envelopeAttributes(out.envelope),
  );
  if (startsTrace) headers[TRACEPARENT] ??= newTraceparent();
  return { message: outgoingMessage(out, headers), span };
}

/** The headers of every saga message, and what each says (the AsyncAPI document lists them). */
export const MESSAGE_HEADERS = {
  [TRACEPARENT]: 'W3C trace context of the span that sent it: its consumer continues the trace',
  'message-id': "the envelope's id",
  'message-type': "the envelope's type (its topic)",
  'correlation-id': "the envelope's correlationId: every message of one saga has the one its order.placed has",
} as const satisfies Record<string, string>;

function outgoingMessage(out: Outgoing, traceHeaders: Record<string, string>): Message {
  return {
    key: out.key ?? out.envelope.orderId,
    value: encode(out.envelope),
    headers: {
      ...traceHeaders,
      'message-id': out.envelope.id,
      'message-type': out.envelope.type,
      'correlation-id': out.envelope.correlationId,
    },
  };
}
