/**
 * What the platform is made of, for Kubernetes: its components, their ports, and what each may
 * do on Kafka — all derived from the topic list the services themselves use
 * (services/runtime/src/topics.ts), never listed a second time.
 */
import {
  allTopics,
  deadLetterTopicOf,
  HTTP_PORTS,
  SAGA_TOPICS,
  STATE_TOPICS,
  topicsConsumedBy,
  type SagaTopic,
  type ServiceName,
  type StateTopic,
  type TopicSpec,
} from '@ordersaga/runtime';

export type ComponentName = ServiceName | 'operator';

export interface KafkaAccess {
  /** Topics it consumes or reads. */
  readonly read: readonly string[];
  /** Topics it produces to. */
  readonly write: readonly string[];
  /** Prefix of its consumer groups: its main group and its state readers. */
  readonly groupPrefix: string;
  /** Prefix of its transactional ids, if it commits transactions. */
  readonly transactionalIdPrefix?: string;
}

export interface Component {
  readonly name: ComponentName;
  readonly description: string;
  readonly port: number;
  readonly kafka: KafkaAccess;
  /** Who may call its HTTP port besides Prometheus: 'any' for the public API. */
  readonly ingress: 'any' | 'metrics-only';
  /** Destinations outside the cluster it must reach (beyond Kafka and DNS). */
  readonly egress: ReadonlyArray<'kube-apiserver' | 'webhooks'>;
}

const sagaTopics = Object.entries(SAGA_TOPICS) as Array<[SagaTopic, TopicSpec]>;
const stateTopics = Object.entries(STATE_TOPICS) as Array<[StateTopic, TopicSpec]>;

function serviceAccess(service: ServiceName): KafkaAccess {
  const consumed = topicsConsumedBy(service);
  const state = stateTopics.filter(([, spec]) => spec.producer === service).map(([name]) => name);
  const lookups = stateTopics.filter(([, spec]) => spec.readers?.includes(service)).map(([name]) => name);
  return {
    read: [...consumed, ...state, ...lookups],
    write: [
      ...sagaTopics.filter(([, spec]) => spec.producer === service).map(([name]) => name),
      ...state,
      ...consumed.map(deadLetterTopicOf),
    ],
    groupPrefix: service,
    transactionalIdPrefix: `${service}.`,
  };
}

const DESCRIPTIONS: Record<ComponentName, string> = {
  order: 'Order API and saga orchestrator',
  stock: 'Stock reservations',
  billing: 'Payments against customer credit',
  notification: 'Tells customers how their orders ended',
  operator: 'SagaOrder controller',
};

export const COMPONENTS: readonly Component[] = [
  { name: 'order', port: HTTP_PORTS.order, kafka: serviceAccess('order'), ingress: 'any', egress: [] },
  { name: 'stock', port: HTTP_PORTS.stock, kafka: serviceAccess('stock'), ingress: 'metrics-only', egress: [] },
  { name: 'billing', port: HTTP_PORTS.billing, kafka: serviceAccess('billing'), ingress: 'metrics-only', egress: [] },
  {
    name: 'notification',
    port: HTTP_PORTS.notification,
    kafka: serviceAccess('notification'),
    ingress: 'metrics-only',
    egress: ['webhooks'],
  },
  {
    name: 'operator',
    port: HTTP_PORTS.operator,
    // It follows the sagas and places the orders of SagaOrders applied with kubectl.
    kafka: { read: ['order.state', 'order.placed'], write: ['order.placed'], groupPrefix: 'operator' },
    ingress: 'metrics-only',
    egress: ['kube-apiserver'],
  },
].map((c) => ({ ...c, description: DESCRIPTIONS[c.name as ComponentName] })) as Component[];

export { allTopics };
