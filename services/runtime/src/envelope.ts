import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { schemaErrors, SCHEMA_VERSION, type AnyEnvelope, type Envelope, type Payload } from './messages.js';
import type { SagaTopic } from './topics.js';

/** A message that can never be processed, whatever the number of retries. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

/** What a handler asks to send: the runtime fills in ids, time and headers. */
export interface Outgoing<T extends SagaTopic = SagaTopic> {
  readonly topic: T;
  readonly envelope: Envelope<T>;
}

/**
 * Builds the message that `cause` leads to: same order, same correlation, caused by it.
 * `id` may be fixed by the caller to make a reply deterministic.
 */
export function reply<T extends SagaTopic>(
  cause: Pick<Envelope, 'id' | 'orderId' | 'correlationId'>,
  type: T,
  payload: Payload<T>,
  now: Date,
): Outgoing<T> {
  return {
    topic: type,
    envelope: {
      id: randomUUID(),
      type,
      version: SCHEMA_VERSION,
      orderId: cause.orderId,
      correlationId: cause.correlationId,
      causationId: cause.id,
      timestamp: now.toISOString(),
      payload,
    },
  };
}

/** Builds the first message of a saga (no cause). */
export function initial<T extends SagaTopic>(
  type: T,
  orderId: string,
  payload: Payload<T>,
  now: Date,
  correlationId: string = randomUUID(),
): Outgoing<T> {
  return {
    topic: type,
    envelope: {
      id: randomUUID(),
      type,
      version: SCHEMA_VERSION,
      orderId,
      correlationId,
      causationId: null,
      timestamp: now.toISOString(),
      payload,
    },
  };
}

export function encode(envelope: Envelope): Buffer {
  return Buffer.from(JSON.stringify(envelope));
}

/** Parses and validates a record from `topic`; throws PoisonMessageError with the reason. */
export function decode(topic: SagaTopic, value: Buffer | null): AnyEnvelope {
  if (value === null) throw new PoisonMessageError('empty record value (tombstone) on a saga topic');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new PoisonMessageError(`invalid JSON: ${(err as Error).message}`);
  }
  const errors = schemaErrors(topic, parsed);
  if (errors.length > 0) throw new PoisonMessageError(`schema violation: ${errors.join('; ')}`);
  return parsed as AnyEnvelope;
}

/** Kafka headers as strings (kafkajs gives Buffers, arrays for repeated keys). */
export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
}
