/**
 * The SagaOrder resource and how a saga's state maps onto it. Pure: no API calls here.
 */
import {
  attemptOf,
  CONFIRMED,
  FAILED,
  isTerminal as sagaEnded,
  sagaOrderPhase,
  sagaVersionOf,
  type OrderItem,
  type SagaOrderPhase,
  type SagaState,
} from '@ordersaga/contracts';

export const ORDER_ID_LABEL = 'ordersaga.dev/order-id';

export interface Condition {
  type: 'Ready' | 'Succeeded';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SagaOrderStatus {
  orderId?: string;
  source?: 'http' | 'kubernetes';
  phase?: SagaOrderPhase;
  currentStep?: string;
  total?: string;
  reason?: string;
  sagaVersion?: number;
  attempt?: number;
  retryTokens?: string[];
  correlationId?: string;
  traceId?: string;
  placedAt?: string;
  completedAt?: string;
  observedGeneration?: number;
  history?: Array<{ at: string; phase: string; step?: string; event: string }>;
  conditions?: Condition[];
}

export interface SagaOrder {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: Date;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: Date;
  };
  spec: { customerId: string; items: OrderItem[] };
  status?: SagaOrderStatus;
}

const CONFIRMED_PHASE = sagaOrderPhase(CONFIRMED);
const FAILED_PHASE = sagaOrderPhase(FAILED);

export const isTerminal = (phase: SagaOrderPhase | undefined) => phase === CONFIRMED_PHASE || phase === FAILED_PHASE;

const euros = (cents: number) => (cents / 100).toFixed(2);

/**
 * The Succeeded condition's reason for a failed saga, CamelCase as the API conventions ask:
 * StepTimedOut, or the failure's kind (out_of_stock -> OutOfStock, unknown_sku -> UnknownSku).
 */
function failureReason(saga: SagaState): string {
  if (saga.failure?.timedOut) return 'StepTimedOut';
  const kind = saga.failure?.kind;
  if (!kind) return 'StepFailed';
  return kind.replace(/(^|_)([a-z])/g, (_m, _sep, letter: string) => letter.toUpperCase());
}

/** Keeps a condition's lastTransitionTime unless its status changes (API conventions). */
function condition(
  previous: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition {
  const before = previous?.find((c) => c.type === next.type);
  return { ...next, lastTransitionTime: before && before.status === next.status ? before.lastTransitionTime : now };
}

/** The status a SagaOrder should have for this saga. */
export function statusOf(
  saga: SagaState,
  order: Pick<SagaOrder, 'metadata' | 'status'> | undefined,
  now: Date,
): SagaOrderStatus {
  const phase = sagaOrderPhase(saga.phase);
  const at = now.toISOString();
  const done = sagaEnded(saga.phase);
  const generation = order?.metadata.generation;
  const reason = saga.failure?.reason;
  const previous = order?.status?.conditions;
  const conditions = [
    condition(
      previous,
      {
        type: 'Ready',
        status: done ? 'True' : 'False',
        reason: done ? 'SagaEnded' : 'SagaInProgress',
        message: done ? `the saga ended: ${phase}` : `the saga is at ${saga.step ?? 'its start'}`,
        ...(generation ? { observedGeneration: generation } : {}),
      },
      at,
    ),
    condition(
      previous,
      {
        type: 'Succeeded',
        status: phase === CONFIRMED_PHASE ? 'True' : phase === FAILED_PHASE ? 'False' : 'Unknown',
        reason: phase === FAILED_PHASE ? failureReason(saga) : phase,
        message: reason ?? (phase === CONFIRMED_PHASE ? 'order confirmed' : 'in progress'),
        ...(generation ? { observedGeneration: generation } : {}),
      },
      at,
    ),
  ];
  return {
    orderId: saga.orderId,
    // Objects the controller creates carry the order-id label; the others were applied by users.
    source: order && !order.metadata.labels?.[ORDER_ID_LABEL] ? 'kubernetes' : 'http',
    phase,
    ...(saga.step ? { currentStep: saga.step } : {}),
    ...(saga.total !== undefined ? { total: euros(saga.total) } : {}),
    ...(reason ? { reason } : {}),
    sagaVersion: sagaVersionOf(saga),
    attempt: attemptOf(saga),
    ...(saga.retryTokens?.length ? { retryTokens: [...saga.retryTokens] } : {}),
    correlationId: saga.correlationId,
    ...(saga.traceId ? { traceId: saga.traceId } : {}),
    placedAt: saga.placedAt,
    ...(done ? { completedAt: saga.updatedAt } : {}),
    ...(generation ? { observedGeneration: generation } : {}),
    history: saga.history.map((h) => ({
      at: h.at,
      phase: sagaOrderPhase(h.phase),
      ...(h.step ? { step: h.step } : {}),
      event: h.event,
    })),
    conditions,
  };
}

/** Equal for the purpose of writing: what a status patch would change. */
export function sameStatus(a: SagaOrderStatus | undefined, b: SagaOrderStatus): boolean {
  const strip = (s: SagaOrderStatus | undefined) =>
    JSON.stringify({ ...s, conditions: s?.conditions?.map(({ lastTransitionTime: _, ...c }) => c) });
  return strip(a) === strip(b);
}

/** Which sagas get a SagaOrder when they were not placed through Kubernetes. */
export type MirrorMode = 'all' | 'failed' | 'sampled';

export function wanted(saga: SagaState, mode: MirrorMode, samplePercent: number): boolean {
  if (mode === 'all') return true;
  if (mode === 'failed') return saga.phase === FAILED;
  // The same order is always in or out of the sample, on every replica and restart.
  let hash = 0;
  for (const char of saga.orderId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % 100 < samplePercent;
}

/** A finished order whose SagaOrder has outlived its TTL (and must not be created again). */
export function expired(completedAt: string | undefined, ttlSeconds: number, now: Date): boolean {
  return completedAt !== undefined && Date.parse(completedAt) + ttlSeconds * 1000 <= now.getTime();
}
