/**
 * The SagaOrder controller. It follows `order.state` (every saga's state) and `order.placed`
 * from Kafka, watches SagaOrders, and — while it holds the lease — brings the objects in line:
 *
 * - a saga gets a SagaOrder (per the mirror mode), and its status follows the saga;
 * - a SagaOrder created with kubectl (no status yet) has its order placed, exactly once, with
 *   its uid as the idempotency key;
 * - it acts only on its install's SagaOrders (RELEASE_LABEL names its release, or no release when
 *   it has none): several installs share a namespace. Adopting, it also claims those that name no
 *   install, by labelling them at the version it saw, so that of two claimants one wins;
 * - a Failed SagaOrder annotated with a retry token (RETRY_ANNOTATION) has its saga run again,
 *   once per token, as POST /orders/:id/retry would; a retry it cannot take is refused with a
 *   Warning Event that says why;
 * - a SagaOrder holds a finalizer while its saga runs: `kubectl delete` of one cancels the saga,
 *   shows Cancelling, and lets the object go once the saga has ended; a SagaOrder a user
 *   deleted is never created again, under any name (the MirrorLedger remembers, also what
 *   went while the controller was away);
 * - finished SagaOrders are deleted once their TTL has passed.
 *
 * The saga never waits for Kubernetes: changes only mark an order dirty, and a rate-limited
 * writer catches up — several changes of one order between two writes become one write, and
 * while the API server is away the dirty set simply waits.
 */
import { makeInformer, type Informer, type ObjectCache } from '@kubernetes/client-node';
import { Value } from '@sinclair/typebox/value';
import {
  attemptOf,
  CANCELLING_PHASE,
  cancelOrder,
  CONFIRMED,
  isTerminal as sagaEnded,
  orderIdFor,
  orderRetryRefusal,
  PENDING,
  placeOrder,
  RELEASE_LABEL,
  RETRY_ANNOTATION,
  SAGAORDER_FINALIZER,
  retryOrder,
  RetryToken,
  SAGAORDER_GROUP,
  SAGAORDER_PLURAL,
  SAGAORDER_VERSION,
  sagaOrderPhase,
  type SagaState,
} from '@ordersaga/contracts';
import { metrics as runtimeMetrics, StateTable, type Logger, type Publisher } from '@ordersaga/runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import { statusCodeOf, type Kube as KubeApi } from './kube.js';
import type { LeaderElector } from './leader.js';
import type { MirrorLedger } from './mirror-ledger.js';
import type { PlacedOrders } from './placed-orders.js';
import {
  expired,
  isTerminal,
  ORDER_ID_LABEL,
  sameStatus,
  statusOf,
  wanted,
  type MirrorMode,
  type SagaOrder,
} from './sagaorder.js';

const reconciles = new Counter({
  name: 'ordersaga_operator_reconciles_total',
  help: 'Orders brought in line with their saga, by result',
  labelNames: ['result'] as const,
  registers: [runtimeMetrics.registry],
});
// At 0 from the start, so the first of each shows in increase() and rate().
for (const result of ['placed', 'written', 'skipped', 'expired']) reconciles.inc({ result }, 0);
const mirrorLag = new Histogram({
  name: 'ordersaga_operator_mirror_lag_seconds',
  help: 'Time from a saga change to its SagaOrder status write',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [runtimeMetrics.registry],
});
const behind = new Gauge({
  name: 'ordersaga_operator_pending_writes',
  help: 'Orders whose SagaOrder is behind their saga',
  registers: [runtimeMetrics.registry],
});

export interface ControllerOptions {
  readonly kube: KubeApi;
  readonly sagas: StateTable<SagaState>;
  readonly placed: PlacedOrders;
  readonly ledger: MirrorLedger;
  readonly publisher: Publisher;
  readonly leader: LeaderElector;
  readonly log: Logger;
  readonly identity: string;
  readonly mirrorMode: MirrorMode;
  readonly samplePercent: number;
  readonly ttlSeconds: number;
  /** The install (Helm release) whose SagaOrders it keeps; '' for those that name none. */
  readonly release: string;
  /** With a release: also claim (then place) the SagaOrders that name no install. */
  readonly adoptUnlabelled: boolean;
}

export class Controller {
  private readonly dirty = new Set<string>();
  private readonly toPlace = new Set<string>();
  /** Orders whose SagaOrder asks for a retry not yet acted on, and the token last acted on per order. */
  private readonly toRetry = new Set<string>();
  private readonly retriesDone = new Map<string, string>();
  /** SagaOrders the watch saw go, by order id: their going is recorded, and a running saga cancelled. */
  private readonly deleted = new Map<string, string>();
  /** Orders whose saga was asked to cancel since this process started (asking again changes nothing). */
  private readonly cancelAsked = new Set<string>();
  /** SagaOrders that name no install, by name, to be claimed for ours. */
  private readonly toClaim = new Map<string, SagaOrder>();
  /** SagaOrders by order id, from the watch and from our own writes. */
  private readonly byOrderId = new Map<string, SagaOrder>();
  private informer: (Informer<SagaOrder> & ObjectCache<SagaOrder>) | undefined;
  private synced = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly options: ControllerOptions) {
    options.sagas.onChange((orderId) => this.markDirty(orderId));
  }

  get ready(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    const { kube } = this.options;
    const path = `/apis/${SAGAORDER_GROUP}/${SAGAORDER_VERSION}/namespaces/${kube.namespace}/${SAGAORDER_PLURAL}`;
    const informer = makeInformer<SagaOrder>(kube.config, path, () => kube.listSagaOrders() as never);
    informer.on('add', (order) => this.observe(order));
    informer.on('update', (order) => this.observe(order));
    informer.on('delete', (order) => {
      this.toClaim.delete(order.metadata.name!);
      if (!this.owns(order)) return;
      this.byOrderId.delete(orderIdOf(order));
      this.deleted.set(orderIdOf(order), order.metadata.name!);
      this.kick();
    });
    informer.on('connect', () => (this.synced = true));
    informer.on('error', (err) => {
      // Stopping aborts the watch: that is no failure.
      if (this.stopped) return;
      this.options.log.warn({ err: String(err) }, 'watch of SagaOrders failed; restarting it');
      setTimeout(() => !this.stopped && void informer.start().catch(() => undefined), 2_000);
    });
    this.informer = informer;
    await informer.start().catch((err) =>
      informer.stop().then(() => {
        throw err;
      }),
    );
    this.synced = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.informer?.stop();
  }

  /** Whether a SagaOrder is this install's: its label names our release (or none, when we have none). */
  private owns(order: SagaOrder): boolean {
    return (order.metadata.labels?.[RELEASE_LABEL] ?? '') === this.options.release;
  }

  private observe(order: SagaOrder): void {
    const { release, adoptUnlabelled } = this.options;
    this.toClaim.delete(order.metadata.name!);
    if (!this.owns(order)) {
      // Another install's, or nobody's yet: ours to claim only when we adopt.
      if (release && adoptUnlabelled && !order.metadata.labels?.[RELEASE_LABEL]) {
        this.toClaim.set(order.metadata.name!, order);
        this.kick();
      }
      return;
    }
    const orderId = orderIdOf(order);
    // The watch can deliver an object older than the one our own write returned: keep the newer.
    const known = this.byOrderId.get(orderId);
    if (known && Number(known.metadata.resourceVersion) > Number(order.metadata.resourceVersion)) return;
    this.byOrderId.set(orderId, order);
    // Applied by a user (the controller's own objects carry the order-id label) and not placed yet.
    if (!order.status?.orderId && !order.metadata.labels?.[ORDER_ID_LABEL]) this.toPlace.add(orderId);
    const retry = order.metadata.annotations?.[RETRY_ANNOTATION];
    if (retry !== undefined && this.retriesDone.get(orderId) !== retry) this.toRetry.add(orderId);
    // Being deleted: waiting for us (our finalizer) to cancel its saga, or to let it go.
    if (order.metadata.deletionTimestamp) this.markDirty(orderId);
    this.kick();
  }

  private markDirty(orderId: string): void {
    this.dirty.add(orderId);
    behind.set(this.dirty.size);
    this.kick();
  }

  private kick(): void {
    this.wake?.();
  }

  /** The writer: runs while the process lives, writes only while leading. */
  private async run(): Promise<void> {
    let failures = 0;
    let lastSweep = 0;
    while (!this.stopped) {
      if (this.options.leader.isLeader) {
        try {
          await this.claimUnlabelled();
          await this.placeNewOrders();
          await this.requestRetries();
          await this.recordDeleted();
          await this.mirrorDirty();
          if (Date.now() - lastSweep > 1_000) {
            await this.deleteExpired();
            await this.forgetRetired();
            lastSweep = Date.now();
          }
          failures = 0;
        } catch (err) {
          failures++;
          this.options.log.warn({ err: String(err), failures }, 'Kubernetes write failed; will retry');
        }
      }
      const delay = failures > 0 ? Math.min(5_000, 100 * 2 ** failures) : 1_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = failures > 0 ? undefined : () => (clearTimeout(timer), resolve());
      });
      this.wake = undefined;
    }
  }

  /**
   * SagaOrders that name no install: label each with our release, at the version we saw. Another
   * claimant that got there first makes ours a conflict, and the SagaOrder stays theirs.
   */
  private async claimUnlabelled(): Promise<void> {
    const { kube, release, log } = this.options;
    for (const [name, order] of [...this.toClaim]) {
      this.toClaim.delete(name);
      try {
        this.observe(
          await kube.patchMetadata(name, order.metadata.resourceVersion!, { labels: { [RELEASE_LABEL]: release } }),
        );
        log.info({ sagaOrder: name, release }, 'SagaOrder claimed for this release');
      } catch (err) {
        // Changed or gone since we saw it: the watch brings what it became.
        const code = (err as { code?: number }).code;
        if (code !== 409 && code !== 404) {
          this.toClaim.set(name, order);
          throw err;
        }
      }
    }
  }

  /** SagaOrders created with kubectl: place each order once, then record it in the status. */
  private async placeNewOrders(): Promise<void> {
    if (this.toPlace.size === 0) return;
    const { placed, publisher, sagas, kube, log } = this.options;
    await placed.caughtUp();
    for (const orderId of [...this.toPlace]) {
      const order = this.byOrderId.get(orderId);
      if (!order || order.status?.orderId || order.metadata.deletionTimestamp) {
        this.toPlace.delete(orderId);
        continue;
      }
      const uid = order.metadata.uid!;
      const now = new Date();
      if (!placed.has(orderId) && !sagas.get(orderId)) {
        const { customerId, items } = order.spec;
        // The same door as the Order API's: the uid is the idempotency key, so orderIdOf is its id.
        await placeOrder(publisher, { customerId, items, idempotencyKey: uid }, now);
        placed.add(orderId);
        log.info({ orderId, sagaOrder: order.metadata.name }, 'order placed from SagaOrder');
      }
      const saga = sagas.get(orderId);
      const status = saga
        ? statusOf(saga, order, now)
        : {
            orderId,
            source: 'kubernetes' as const,
            phase: sagaOrderPhase(PENDING),
            placedAt: now.toISOString(),
            observedGeneration: order.metadata.generation,
          };
      this.byOrderId.set(orderId, await kube.patchStatus(order.metadata.name!, status, order.status));
      this.toPlace.delete(orderId);
      reconciles.inc({ result: 'placed' });
    }
  }

  /** SagaOrders annotated with a retry token: ask the saga for it once, or say why it cannot be. */
  private async requestRetries(): Promise<void> {
    const { sagas, publisher, kube, log, identity } = this.options;
    for (const orderId of [...this.toRetry]) {
      const order = this.byOrderId.get(orderId);
      const token = order?.metadata.annotations?.[RETRY_ANNOTATION];
      const saga = sagas.get(orderId);
      if (!order || token === undefined) {
        this.toRetry.delete(orderId);
        continue;
      }
      if (!saga) continue; // not placed yet: its saga comes
      const name = order.metadata.name!;
      // Taken already (the annotation seen again, after a restart say): nothing to ask.
      const taken = saga.retryTokens?.includes(token) ?? false;
      const refusal = taken
        ? undefined
        : Value.Check(RetryToken, token)
          ? orderRetryRefusal(saga)
          : `retry token "${token}" is not 1 to 100 of A-Z a-z 0-9 . _ : -`;
      if (refusal) {
        await kube.recordEvent(order, 'Warning', 'RetryRefused', `retry ${token} refused: ${refusal}`, identity);
        log.warn({ orderId, sagaOrder: name, token }, `retry refused: ${refusal}`);
      } else if (!taken) {
        await retryOrder(publisher, saga, token, `SagaOrder ${name}`, new Date());
        const attempt = attemptOf(saga) + 1;
        await kube.recordEvent(
          order,
          'Normal',
          'RetryRequested',
          `retry ${token}: attempt ${attempt} of order ${orderId}`,
          identity,
        );
        log.info({ orderId, sagaOrder: name, token }, 'retry requested from SagaOrder');
      }
      this.retriesDone.set(orderId, token);
      this.toRetry.delete(orderId);
    }
  }

  private async mirrorDirty(): Promise<void> {
    for (const orderId of [...this.dirty]) {
      // Taken off first: a change that lands while this write is in flight marks it again.
      this.dirty.delete(orderId);
      try {
        await this.mirror(orderId);
      } catch (err) {
        this.dirty.add(orderId);
        throw err;
      } finally {
        behind.set(this.dirty.size);
      }
    }
  }

  private async mirror(orderId: string): Promise<void> {
    const { sagas, kube, ledger, mirrorMode, samplePercent, ttlSeconds, identity, release } = this.options;
    const saga = sagas.get(orderId);
    const now = new Date();
    let order = this.byOrderId.get(orderId);
    if (order?.metadata.deletionTimestamp) return this.letGo(orderId, order, saga);
    if (!saga) {
      reconciles.inc({ result: 'skipped' });
      return;
    }
    if (!order) {
      const had = ledger.get(orderId);
      // It had one, and it is gone: a user deleted it while this controller was away.
      if (had?.mirror === 'mirrored' && !expired(finishedAt(saga), ttlSeconds, now)) {
        this.deleted.set(orderId, had.name);
        this.kick();
      }
      if (had || !wanted(saga, mirrorMode, samplePercent) || expired(finishedAt(saga), ttlSeconds, now)) {
        reconciles.inc({ result: 'skipped' });
        return;
      }
      order = await kube.createSagaOrder(
        orderId,
        { [ORDER_ID_LABEL]: orderId, ...(release ? { [RELEASE_LABEL]: release } : {}) },
        { customerId: saga.customerId, items: [...saga.items] },
        sagaEnded(saga.phase) ? [] : [SAGAORDER_FINALIZER],
      );
      this.byOrderId.set(orderId, order);
    }
    if (!ledger.get(orderId)) await ledger.record(orderId, 'mirrored', order.metadata.name!);
    const status = statusOf(saga, order, now);
    if (sameStatus(order.status, status)) return this.holdWhileRunning(orderId, order, !sagaEnded(saga.phase));
    const updated = await kube.patchStatus(order.metadata.name!, status, order.status);
    this.byOrderId.set(orderId, updated);
    mirrorLag.observe(Math.max(0, now.getTime() - Date.parse(saga.updatedAt)) / 1000);
    reconciles.inc({ result: 'written' });
    if ((status.attempt ?? 1) > (order.status?.attempt ?? 1)) {
      const retry = saga.retryTokens?.at(-1);
      await kube.recordEvent(
        updated,
        'Normal',
        'AttemptStarted',
        `attempt ${status.attempt} of order ${orderId} started${retry ? ` (retry ${retry})` : ''}`,
        identity,
      );
    }
    if (!isTerminal(order.status?.phase) && isTerminal(status.phase)) {
      const confirmed = status.phase === sagaOrderPhase(CONFIRMED);
      await kube.recordEvent(
        updated,
        confirmed ? 'Normal' : 'Warning',
        confirmed ? 'OrderConfirmed' : 'OrderFailed',
        confirmed ? `order ${orderId} confirmed: ${status.total} EUR` : `order ${orderId} failed: ${status.reason}`,
        identity,
      );
    }
    await this.holdWhileRunning(orderId, updated, !sagaEnded(saga.phase));
  }

  /** The finalizer on a SagaOrder whose saga runs, off once it has ended. */
  private async holdWhileRunning(orderId: string, order: SagaOrder, running: boolean): Promise<void> {
    const finalizers = order.metadata.finalizers ?? [];
    if (finalizers.includes(SAGAORDER_FINALIZER) === running) return;
    const next = running ? [...finalizers, SAGAORDER_FINALIZER] : finalizers.filter((f) => f !== SAGAORDER_FINALIZER);
    await this.patchFinalizers(orderId, order, next);
  }

  /**
   * A SagaOrder being deleted: its going is recorded; while its saga runs, the saga is asked to
   * cancel and the object shows Cancelling; once the saga has ended (or if it never started), the
   * finalizer comes off and the object goes.
   */
  private async letGo(orderId: string, order: SagaOrder, saga: SagaState | undefined): Promise<void> {
    const { kube } = this.options;
    const name = order.metadata.name!;
    await this.rememberDeleted(orderId, name);
    const finalizers = order.metadata.finalizers ?? [];
    if (!finalizers.includes(SAGAORDER_FINALIZER)) return;
    if (saga && !sagaEnded(saga.phase)) {
      await this.cancelRunning(orderId, name);
      const status = { ...statusOf(saga, order, new Date()), phase: CANCELLING_PHASE };
      if (!sameStatus(order.status, status)) {
        this.byOrderId.set(orderId, await kube.patchStatus(name, status, order.status));
      }
      return;
    }
    await this.patchFinalizers(
      orderId,
      order,
      finalizers.filter((f) => f !== SAGAORDER_FINALIZER),
    );
  }

  /** Sets the finalizers at the version we saw; a conflict or a gone object waits for what the watch brings. */
  private async patchFinalizers(orderId: string, order: SagaOrder, finalizers: string[]): Promise<void> {
    try {
      const patched = await this.options.kube.patchMetadata(order.metadata.name!, order.metadata.resourceVersion!, {
        finalizers,
      });
      this.byOrderId.set(orderId, patched);
    } catch (err) {
      const code = statusCodeOf(err);
      if (code !== 409 && code !== 404) throw err;
      if (code === 409) this.markDirty(orderId);
    }
  }

  /** Asks the saga of a deleted SagaOrder to cancel, when it runs (once per process; again changes nothing). */
  private async cancelRunning(orderId: string, name: string): Promise<void> {
    const { sagas, publisher, log } = this.options;
    const saga = sagas.get(orderId);
    if (!saga || sagaEnded(saga.phase) || this.cancelAsked.has(orderId)) return;
    await cancelOrder(publisher, saga, `SagaOrder ${name} deleted`, new Date());
    this.cancelAsked.add(orderId);
    log.info({ orderId, sagaOrder: name }, 'SagaOrder deleted: its saga is cancelled');
  }

  /** Records that an order's SagaOrder went: it is never created again. */
  private async rememberDeleted(orderId: string, name: string): Promise<void> {
    const { ledger } = this.options;
    if (ledger.get(orderId)?.mirror !== 'deleted') await ledger.record(orderId, 'deleted', name);
  }

  /** SagaOrders that went (deleted by a user, or by their TTL): remembered, never created again; a running saga cancelled. */
  private async recordDeleted(): Promise<void> {
    for (const [orderId, name] of [...this.deleted]) {
      await this.rememberDeleted(orderId, name);
      await this.cancelRunning(orderId, name);
      this.deleted.delete(orderId);
    }
  }

  /** Orders whose saga was retired: nothing is mirrored of them any more, so their ledger entry goes. */
  private async forgetRetired(): Promise<void> {
    const { ledger, sagas } = this.options;
    for (const orderId of ledger.orderIds()) {
      if (sagas.retiredAt(orderId) !== undefined) await ledger.forget(orderId);
    }
  }

  private async deleteExpired(): Promise<void> {
    const { kube, ttlSeconds } = this.options;
    const now = new Date();
    for (const [orderId, order] of this.byOrderId) {
      if (isTerminal(order.status?.phase) && expired(order.status?.completedAt, ttlSeconds, now)) {
        await kube.deleteSagaOrder(order.metadata.name!).catch((err) => {
          if ((err as { code?: number }).code !== 404) throw err;
        });
        this.byOrderId.delete(orderId);
        reconciles.inc({ result: 'expired' });
      }
    }
  }
}

/** The order a SagaOrder stands for: recorded in its status or label, or derived from its uid. */
function orderIdOf(order: SagaOrder): string {
  return (
    order.status?.orderId ??
    order.metadata.labels?.[ORDER_ID_LABEL] ??
    orderIdFor(order.spec.customerId, order.metadata.uid)
  );
}

function finishedAt(saga: SagaState): string | undefined {
  return sagaEnded(saga.phase) ? saga.updatedAt : undefined;
}
