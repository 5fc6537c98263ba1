/**
 * The one registry of ordersaga's components: the only place a component is named. The local
 * runner, the test stack, the cdk8s model (and so the Helm chart), skaffold.yaml, the
 * Dockerfile's notes and the docs all derive from it; the generated files are checked for
 * staleness (`npm run generate`, tests/generated.test.ts).
 *
 * What a service consumes and produces is said by the topics (topics.ts names each topic's
 * producer and consumers); the controller, which is no saga participant, says it here.
 */
export interface ComponentSpec {
  /** For people: one line. */
  readonly description: string;
  /** Its npm workspace (a folder with package.json and src/main.ts): its image is built from it. */
  readonly workspace: string;
  /** Its HTTP port: API, health, metrics. Locally each component has its own. */
  readonly port: number;
  /**
   * `service`: a saga participant run by `runService`, one consumer group over the topics that
   * name it, its state in `<name>.state`. `controller`: the SagaOrder controller.
   */
  readonly kind: 'service' | 'controller';
  /** Who may call its HTTP port besides Prometheus: `public` for an API people call. */
  readonly ingress: 'public' | 'metrics-only';
  /** What it must reach outside the cluster, beyond Kafka and DNS. */
  readonly egress: ReadonlyArray<'kube-apiserver' | 'webhooks'>;
  /** The saga's settings it reads (the chart's `saga.*` values, cdk8s/src/ordersaga-chart.ts). */
  readonly sagaSettings?: ReadonlyArray<
    'version' | 'stepTimeoutMs' | 'compensationTimeoutMs' | 'startTimeoutMs' | 'holdTimeMs'
  >;
  /** What a person can ask it over HTTP besides /healthz, /readyz and /metrics (the runner's banner, the docs). */
  readonly endpoints: readonly string[];
  /** Only for a component that is not a service: the topics it reads and writes (topics.ts; checked). */
  readonly kafka?: { readonly reads: readonly string[]; readonly writes: readonly string[] };
}

/** In start order: the order service first, the others once it is ready, the controller last. */
export const COMPONENTS = {
  order: {
    description: 'Order API and saga orchestrator',
    workspace: 'services/order',
    port: 3000,
    kind: 'service',
    ingress: 'public',
    egress: [],
    sagaSettings: ['version', 'stepTimeoutMs', 'compensationTimeoutMs', 'startTimeoutMs'],
    endpoints: [
      'POST /orders',
      'GET /orders/:id',
      'DELETE /orders/:id',
      'POST /orders/:id/retry',
      'GET /openapi.json',
      'GET /asyncapi.json',
    ],
  },
  stock: {
    description: 'Stock reservations',
    workspace: 'services/stock',
    port: 3001,
    kind: 'service',
    ingress: 'metrics-only',
    egress: [],
    sagaSettings: ['holdTimeMs'],
    endpoints: ['GET /stock', 'GET /stock/:sku', 'POST /stock/:sku/restock'],
  },
  billing: {
    description: 'Payments against customer credit',
    workspace: 'services/billing',
    port: 3002,
    kind: 'service',
    ingress: 'metrics-only',
    egress: [],
    sagaSettings: ['holdTimeMs'],
    endpoints: [
      'GET /accounts',
      'GET /accounts/:customerId',
      'POST /accounts/:customerId/top-up',
      'GET /payments/:orderId[?attempt=]',
    ],
  },
  notification: {
    description: 'Tells customers how their orders ended',
    workspace: 'services/notification',
    port: 3003,
    kind: 'service',
    ingress: 'metrics-only',
    egress: ['webhooks'],
    endpoints: ['GET /notifications[?customerId=]', 'GET /notifications/:orderId[?attempt=]'],
  },
  operator: {
    description: 'SagaOrder controller',
    workspace: 'operator',
    port: 3010,
    kind: 'controller',
    ingress: 'metrics-only',
    egress: ['kube-apiserver'],
    endpoints: [],
    // It follows the sagas, places the orders of SagaOrders applied with kubectl, asks for the
    // retries annotated on them and the cancel of those deleted, and remembers which it had.
    kafka: {
      reads: ['order.state', 'order.placed', 'sagaorder.mirrors'],
      writes: ['order.placed', 'order.retry', 'order.cancel', 'sagaorder.mirrors'],
    },
  },
} as const satisfies Record<string, ComponentSpec>;

export type ComponentName = keyof typeof COMPONENTS;

/** The saga participants: the components `runService` runs. */
export type ServiceName = {
  [C in ComponentName]: (typeof COMPONENTS)[C]['kind'] extends 'service' ? C : never;
}[ComponentName];

export const COMPONENT_NAMES = Object.keys(COMPONENTS) as ComponentName[];

/** The services, in start order. */
export const SERVICE_NAMES = COMPONENT_NAMES.filter((c): c is ServiceName => COMPONENTS[c].kind === 'service');
