/**
 * The controller's Kubernetes API calls, each behind one rate limiter (the budget etcd can
 * afford) and counted by verb and outcome.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Lease,
} from '@kubernetes/client-node';
import { Counter } from 'prom-client';
import { metrics as runtimeMetrics } from '@ordersaga/runtime';
import { SAGAORDER_GROUP, SAGAORDER_KIND, SAGAORDER_PLURAL, SAGAORDER_VERSION } from '@ordersaga/contracts';
import type { SagaOrder, SagaOrderStatus } from './sagaorder.js';

export const apiCalls = new Counter({
  name: 'ordersaga_operator_api_requests_total',
  help: 'Kubernetes API requests of the controller, by verb and outcome',
  labelNames: ['verb', 'outcome'] as const,
  registers: [runtimeMetrics.registry],
});

/** A token bucket: `qps` calls a second on average, bursts of up to `burst`. */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly qps: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.qps) * 1000)));
    }
  }
}

/** The HTTP status of a client-node error, when it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export class Kube {
  readonly customObjects: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;

  constructor(
    readonly config: KubeConfig,
    readonly namespace: string,
    private readonly limiter: RateLimiter,
  ) {
    this.customObjects = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.coordination = config.makeApiClient(CoordinationV1Api);
  }

  private async call<T>(verb: string, request: () => Promise<T>): Promise<T> {
    await this.limiter.take();
    try {
      const result = await request();
      apiCalls.inc({ verb, outcome: 'ok' });
      return result;
    } catch (err) {
      apiCalls.inc({ verb, outcome: String(statusCodeOf(err) ?? 'error') });
      throw err;
    }
  }

  listSagaOrders(): Promise<{ items: SagaOrder[]; metadata?: { resourceVersion?: string } }> {
    return this.call('list', () =>
      this.customObjects.listNamespacedCustomObject({
        group: SAGAORDER_GROUP,
        version: SAGAORDER_VERSION,
        namespace: this.namespace,
        plural: SAGAORDER_PLURAL,
      }),
    );
  }

  createSagaOrder(
    name: string,
    labels: Record<string, string>,
    spec: SagaOrder['spec'],
    finalizers: string[],
  ): Promise<SagaOrder> {
    const body: SagaOrder = {
      apiVersion: `${SAGAORDER_GROUP}/${SAGAORDER_VERSION}`,
      kind: SAGAORDER_KIND,
      metadata: { name, labels, ...(finalizers.length ? { finalizers } : {}) },
      spec,
    };
    return this.call('create', () =>
      this.customObjects.createNamespacedCustomObject({
        group: SAGAORDER_GROUP,
        version: SAGAORDER_VERSION,
        namespace: this.namespace,
        plural: SAGAORDER_PLURAL,
        body,
      }),
    );
  }

  /**
   * A merge patch of a SagaOrder's metadata (labels, finalizers), only if it is still at
   * `resourceVersion`: a merge patch that names the version is refused with 409 Conflict once the
   * object has changed, so another writer's change is never overwritten.
   */
  patchMetadata(
    name: string,
    resourceVersion: string,
    metadata: Pick<SagaOrder['metadata'], 'labels' | 'finalizers'>,
  ): Promise<SagaOrder> {
    return this.call('patch', () =>
      this.customObjects.patchNamespacedCustomObject(
        {
          group: SAGAORDER_GROUP,
          version: SAGAORDER_VERSION,
          namespace: this.namespace,
          plural: SAGAORDER_PLURAL,
          name,
          body: { metadata: { resourceVersion, ...metadata } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  /** A merge patch of the status; fields `previous` had and `status` lacks are removed. */
  patchStatus(name: string, status: SagaOrderStatus, previous?: SagaOrderStatus): Promise<SagaOrder> {
    const removed = Object.keys(previous ?? {}).filter((key) => !(key in status));
    const body = { status: { ...Object.fromEntries(removed.map((key) => [key, null])), ...status } };
    return this.call('patch-status', () =>
      this.customObjects.patchNamespacedCustomObjectStatus(
        {
          group: SAGAORDER_GROUP,
          version: SAGAORDER_VERSION,
          namespace: this.namespace,
          plural: SAGAORDER_PLURAL,
          name,
          body,
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  deleteSagaOrder(name: string): Promise<unknown> {
    return this.call('delete', () =>
      this.customObjects.deleteNamespacedCustomObject({
        group: SAGAORDER_GROUP,
        version: SAGAORDER_VERSION,
        namespace: this.namespace,
        plural: SAGAORDER_PLURAL,
        name,
      }),
    );
  }

  /** A core/v1 Event on a SagaOrder: what `kubectl describe` shows under Events. */
  recordEvent(
    order: SagaOrder,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    instance: string,
  ): Promise<unknown> {
    const now = new Date();
    return this.call('create-event', () =>
      this.core.createNamespacedEvent({
        namespace: this.namespace,
        body: {
          metadata: { generateName: `${order.metadata.name}.` },
          involvedObject: {
            apiVersion: `${SAGAORDER_GROUP}/${SAGAORDER_VERSION}`,
            kind: SAGAORDER_KIND,
            name: order.metadata.name,
            namespace: this.namespace,
            uid: order.metadata.uid,
          },
          type,
          reason,
          message,
          source: { component: 'ordersaga-operator' },
          reportingComponent: 'ordersaga.dev/operator',
          reportingInstance: instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      }),
    );
  }

  readLease(name: string): Promise<V1Lease> {
    return this.call('get-lease', () => this.coordination.readNamespacedLease({ name, namespace: this.namespace }));
  }

  createLease(body: V1Lease): Promise<V1Lease> {
    return this.call('create-lease', () =>
      this.coordination.createNamespacedLease({ namespace: this.namespace, body }),
    );
  }

  replaceLease(name: string, body: V1Lease): Promise<V1Lease> {
    return this.call('update-lease', () =>
      this.coordination.replaceNamespacedLease({ name, namespace: this.namespace, body }),
    );
  }
}
