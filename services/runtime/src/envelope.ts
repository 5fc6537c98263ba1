import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { Payload, SagaTopic } from './contract.js';

/** The envelope's version: a consumer refuses another (it would not know its fields). */
export const SCHEMA_VERSION = 1;

/** The envelope every saga message carries; `orderId` is its key, the saga it belongs to. */
export interface Envelope<T extends SagaTopic = SagaTopic> {
  id: string;
  type: T;
  version: typeof SCHEMA_VERSION;
  orderId: string;
  /**
   * Which run of the saga the message belongs to, once it has been run again (a retry): 2, 3...
   * Absent for the first run. Replies carry their cause's, so participants keep each run apart.
   */
  attempt?: number;
  correlationId: string;
  causationId: string | null;
  timestamp: string;
  payload: Payload<T>;
}

/** Any saga message, discriminated by `type` so handlers can switch on it. */
export type AnyEnvelope = { [T in SagaTopic]: Envelope<T> }[SagaTopic];

/** The highest `attempt` a message may carry: a saga is not run again for ever. */
export const MAX_ATTEMPT = 100;

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' });

/** The JSON schema of a message of type `type` with its payload's schema: what consumers check, and the AsyncAPI document says. */
export function envelopeSchema(type: string, payload: TSchema) {
  return Type.Object(
    {
      id: Id,
      type: Type.Literal(type),
      version: Type.Literal(SCHEMA_VERSION),
      orderId: Id,
      attempt: Type.Optional(Type.Integer({ minimum: 2, maximum: MAX_ATTEMPT })),
      correlationId: Id,
      causationId: Type.Union([Id, Type.Null()]),
      timestamp: Type.String({ minLength: 20, maxLength: 40 }),
      payload,
    },
    { additionalProperties: false },
  );
}

/** A message that can never be processed, whatever the number of retries. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

/** What a handler asks to send: the runtime fills in ids, time and headers. */
export interface Outgoing<T extends SagaTopic = SagaTopic> {
  readonly topic: T;
  readonly envelope: Envelope<T>;
  /**
   * The Kafka key, when it is not the saga's orderId: a message re-keyed to the one owner of
   * what it decides on (a SKU's stock, a customer's credit), as Kafka Streams repartitions.
   */
  readonly key?: string;
}

/** The message, sent to the partition of `key` instead of its saga's. */
export function keyedBy<T extends SagaTopic>(out: Outgoing<T>, key: string): Outgoing<T> {
  return { ...out, key };
}

/** What a message needs of the one that caused it. */
export type Cause = Pick<Envelope, 'id' | 'orderId' | 'correlationId' | 'attempt'>;

/** Builds the message that `cause` leads to: same order, same attempt, same correlation, caused by it. */
export function reply<T extends SagaTopic>(cause: Cause, type: T, payload: Payload<T>, now: Date): Outgoing<T> {
  return {
    topic: type,
    envelope: {
      id: randomUUID(),
      type,
      version: SCHEMA_VERSION,
      orderId: cause.orderId,
      ...(cause.attempt !== undefined && cause.attempt > 1 ? { attempt: cause.attempt } : {}),
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

/** Checks the envelopes of the topics of a contract, each against its payload schema (compiled once). */
export class EnvelopeCodec {
  private readonly checkers = new Map<SagaTopic, TypeCheck<TSchema>>();

  constructor(private readonly payloads: Readonly<Record<SagaTopic, TSchema>>) {}

  /** The problems of a decoded value as an envelope of `topic` (at most five); none when it is one. */
  errors(topic: SagaTopic, value: unknown): string[] {
    let checker = this.checkers.get(topic);
    if (!checker) {
      const payload = this.payloads[topic];
      if (!payload) return [`no schema for topic ${topic}`];
      checker = TypeCompiler.Compile(envelopeSchema(topic, payload));
      this.checkers.set(topic, checker);
    }
    if (checker.Check(value)) return [];
    return [...checker.Errors(value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
  }

  /** Parses and validates a record from `topic`; throws PoisonMessageError with the reason. */
  decode(topic: SagaTopic, value: Buffer | null): AnyEnvelope {
    if (value === null) throw new PoisonMessageError('empty record value (tombstone) on a saga topic');
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch (err) {
      throw new PoisonMessageError(`invalid JSON: ${(err as Error).message}`);
    }
    const errors = this.errors(topic, parsed);
    if (errors.length > 0) throw new PoisonMessageError(`schema violation: ${errors.join('; ')}`);
    return parsed as AnyEnvelope;
  }
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
