/**
 * What the platform is made of, for Kubernetes: the components of the registry
 * (services/contracts/src/components.ts) with what each may do on Kafka, derived from the topic
 * list the services themselves use (services/contracts/src/topics.ts), never listed a second time.
 */
import {
  allTopics,
  COMPONENT_NAMES,
  COMPONENTS as REGISTRY,
  lookupsOf,
  SAGA_TOPICS,
  stateTopicOf,
  topicsConsumedBy,
  type ComponentName,
  type ComponentSpec,
  type SagaTopic,
  type ServiceName,
  type TopicSpec,
} from '@ordersaga/contracts';
import { deadLetterTopicOf } from '@ordersaga/runtime';

export type { ComponentName };

export interface KafkaAccess {
  /** Topics it consumes or reads. */
  readonly read: readonly string[];
  /** Topics it produces to. */
  readonly write: readonly string[];
  /** Its processor's consumer group (the runtime names it as the service), if it has one. */
  readonly group?: string;
  /**
   * Prefix of its other groups (state and lookup readers, `<name>.<reader>.<uuid>`): it ends with
   * the separator, so that it matches no other component's groups (`order.`, never `order`).
   */
  readonly groupPrefix: string;
  /** Prefix of its transactional ids, if it commits transactions. */
  readonly transactionalIdPrefix?: string;
}

export interface Component extends Omit<ComponentSpec, 'kafka'> {
  readonly name: ComponentName;
  readonly kafka: KafkaAccess;
}

const sagaTopics = Object.entries(SAGA_TOPICS) as Array<[SagaTopic, TopicSpec]>;

function serviceAccess(service: ServiceName): KafkaAccess {
  const consumed = topicsConsumedBy(service);
  const state = stateTopicOf(service);
  return {
    read: [...consumed, state, ...lookupsOf(service)],
    write: [
      ...sagaTopics.filter(([, spec]) => spec.producer === service).map(([name]) => name),
      state,
      ...consumed.map((topic) => deadLetterTopicOf(topic)),
    ],
    group: service,
    groupPrefix: `${service}.`,
    transactionalIdPrefix: `${service}.`,
  };
}

function accessOf(name: ComponentName): KafkaAccess {
  const spec: ComponentSpec = REGISTRY[name];
  if (spec.kind === 'service') return serviceAccess(name as ServiceName);
  // A controller reads and writes what the registry says, and commits no transactions.
  return { read: spec.kafka?.reads ?? [], write: spec.kafka?.writes ?? [], groupPrefix: `${name}.` };
}

export const COMPONENTS: readonly Component[] = COMPONENT_NAMES.map((name) => {
  const { kafka: _declared, ...spec }: ComponentSpec = REGISTRY[name];
  return { name, ...spec, kafka: accessOf(name) };
});

/** The component whose HTTP API is public: the Order API (orders are placed there). */
export const PUBLIC_API: Component = COMPONENTS.find((c) => c.ingress === 'public')!;

export { allTopics };
