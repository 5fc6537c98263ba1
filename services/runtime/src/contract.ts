/**
 * What the runtime knows of the messages it carries and the service it runs: only their shape.
 *
 * The application names its topics and payloads in a package of its own (@ordersaga/contracts),
 * which fills in `MessagePayloads` and `StateTopics` below by declaration merging, as fastify's
 * plugins do with FastifyInstance: every signature here is then typed with the application's
 * topics, while this package names none. At run time a service hands its `ServiceContract` to
 * `runService`.
 */
import type { TSchema } from '@sinclair/typebox';

/** The payload type of each message topic (a message's type is its topic). Declared by the application. */
export interface MessagePayloads {}

/** The compacted state topics, as keys (their values are each service's own row type). Declared by the application. */
export interface StateTopics {}

/** A message topic: one of the application's, or any string while none is declared (this package's own build). */
export type SagaTopic = [keyof MessagePayloads] extends [never] ? string : Extract<keyof MessagePayloads, string>;
export type StateTopic = [keyof StateTopics] extends [never] ? string : Extract<keyof StateTopics, string>;
export type Payload<T extends SagaTopic> = T extends keyof MessagePayloads ? MessagePayloads[T] : unknown;

/** Messages that can never be processed land in `<topic>.dlt`, with the reason in headers. */
export function deadLetterTopicOf<T extends SagaTopic>(topic: T): `${T}.dlt` {
  return `${topic}.dlt`;
}

export type DeadLetterTopic = `${SagaTopic}.dlt`;
export type TopicName = SagaTopic | StateTopic | DeadLetterTopic;

/** A topic as `ensureTopics` creates it. */
export interface TopicDeclaration {
  readonly name: TopicName;
  readonly partitions: number;
  readonly config: Record<string, string>;
}

/** What a service is, in the application's terms: what `runService` needs to know of it. */
export interface ServiceContract {
  /** Its name: logs, metrics, consumer groups and transactional ids. */
  readonly name: string;
  /** Its HTTP port (API, health, metrics) unless PORT says otherwise. */
  readonly port: number;
  /** The message topics it consumes in its main consumer group. */
  readonly consumes: readonly SagaTopic[];
  /** The compacted topic its state lives in. */
  readonly stateTopic: StateTopic;
  /** Other services' state topics it may read as lookups. */
  readonly lookups: readonly StateTopic[];
  /** Every topic of the application, for `ensureTopics`. */
  readonly topics: (partitions: number) => readonly TopicDeclaration[];
  /** The payload schema of every message topic: what a consumer validates before a handler runs. */
  readonly payloads: Readonly<Record<SagaTopic, TSchema>>;
}
