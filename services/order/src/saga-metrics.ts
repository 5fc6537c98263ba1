/**
 * Saga metrics, from the saga state changes each committed transaction made (once per change,
 * on the replica that made it): started, finished by outcome and reason, durations,
 * compensations, timeouts; and the sagas in flight, by the saga version they run on.
 */
import {
  CONFIRMED,
  isTerminal,
  ORDER_FAILURE_KINDS,
  ORDER_SAGAS,
  sagaVersionOf,
  type SagaState,
} from '@ordersaga/contracts';
import { metrics, type RowChange, type StateTable } from '@ordersaga/runtime';
import { Counter, Gauge, Histogram } from 'prom-client';

const registers = [metrics.registry];
const durationBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const started = new Counter({ name: 'ordersaga_sagas_started_total', help: 'Sagas started', registers });
const finished = new Counter({
  name: 'ordersaga_sagas_finished_total',
  help: 'Sagas ended, by outcome (confirmed, failed) and reason (the failed step, or timeout)',
  labelNames: ['outcome', 'reason'] as const,
  registers,
});
const sagaDuration = new Histogram({
  name: 'ordersaga_saga_duration_seconds',
  help: 'From order placed to confirmed or failed',
  labelNames: ['outcome'] as const,
  buckets: durationBuckets,
  registers,
});
const stepDuration = new Histogram({
  name: 'ordersaga_saga_step_duration_seconds',
  help: 'From a step (or compensation) requested to its reply',
  labelNames: ['step'] as const,
  buckets: durationBuckets,
  registers,
});
const compensations = new Counter({
  name: 'ordersaga_saga_compensations_total',
  help: 'Compensations run, by compensation',
  labelNames: ['compensation'] as const,
  registers,
});
const timeouts = new Counter({
  name: 'ordersaga_saga_timeouts_total',
  help: 'Steps (or compensations) that timed out, by step',
  labelNames: ['step'] as const,
  registers,
});

const STEPS = [...new Set(ORDER_SAGAS.flatMap((saga) => saga.steps))];
const COMPENSATIONS = new Set(STEPS.flatMap((s) => (s.compensation ? [s.compensation.name] : [])));
/** The failure kinds the saga's steps declare, and a timeout: a small fixed set of labels. */
const FAILURE_REASONS = new Set([...ORDER_FAILURE_KINDS, 'other']);

// Every series at 0 from the start: a counter first seen at 1 shows no increase() or rate().
finished.inc({ outcome: 'confirmed', reason: 'none' }, 0);
for (const reason of FAILURE_REASONS) finished.inc({ outcome: 'failed', reason }, 0);
for (const compensation of COMPENSATIONS) compensations.inc({ compensation }, 0);
for (const step of [...STEPS.map((s) => s.name), ...COMPENSATIONS]) timeouts.inc({ step }, 0);
const seconds = (from: string, to: string) => Math.max(0, Date.parse(to) - Date.parse(from)) / 1000;

/** The failure reason as a label: a small fixed set, never the free text. */
function reasonOf(saga: SagaState): string {
  if (saga.phase === CONFIRMED) return 'none';
  const kind = saga.failure?.kind;
  return kind && FAILURE_REASONS.has(kind) ? kind : 'other';
}

export function observeSagaChanges(changes: ReadonlyArray<RowChange<SagaState>>): void {
  for (const { before, after } of changes) {
    // A retired saga: it ended long ago, and was counted then.
    if (!after) continue;
    if (!before) started.inc();
    // What happened in this change: the history entries it added.
    const added = after.history.slice(before?.history.length ?? 0);
    for (const entry of added) {
      const [name, verb] = entry.event.split(' ');
      if (COMPENSATIONS.has(name!) && (verb === 'requested' || verb === 'sent'))
        compensations.inc({ compensation: name! });
      if (entry.event.includes(' timed out')) timeouts.inc({ step: name! });
    }
    // A step's reply: from its "requested" entry to now.
    if (before?.step && before.step !== after.step) {
      const requested = [...before.history].reverse().find((h) => h.event === `${before.step} requested`);
      if (requested) stepDuration.observe({ step: before.step }, seconds(requested.at, after.updatedAt));
    }
    if (isTerminal(after.phase) && !(before && isTerminal(before.phase))) {
      const outcome = after.phase === CONFIRMED ? 'confirmed' : 'failed';
      finished.inc({ outcome, reason: reasonOf(after) });
      sagaDuration.observe({ outcome }, seconds(after.placedAt, after.updatedAt));
    }
  }
}

/** Sagas not yet ended, and the age of the oldest, as this replica sees the whole table. */
export function watchInFlight(table: StateTable<SagaState>): void {
  const inFlight = () => [...table.inFlight()].map(([, row]) => row.value);
  new Gauge({
    name: 'ordersaga_sagas_in_flight',
    help:
      'Sagas started and not yet ended, of the partitions this replica owns (aggregate with sum), by the saga ' +
      'version they run on: an older version is still needed while its count is above 0',
    labelNames: ['version'] as const,
    registers,
    collect() {
      const byVersion = new Map(ORDER_SAGAS.map((saga) => [saga.version, 0]));
      for (const saga of inFlight()) {
        const version = sagaVersionOf(saga);
        byVersion.set(version, (byVersion.get(version) ?? 0) + 1);
      }
      for (const [version, count] of byVersion) this.set({ version: String(version) }, count);
    },
  });
  new Gauge({
    name: 'ordersaga_saga_oldest_in_flight_age_seconds',
    help: 'Age of the oldest saga not yet ended (0 when none): what a stuck saga shows as',
    registers,
    collect() {
      const oldest = Math.min(...inFlight().map((saga) => Date.parse(saga.placedAt)));
      this.set(Number.isFinite(oldest) ? Math.max(0, Date.now() - oldest) / 1000 : 0);
    },
  });
}
