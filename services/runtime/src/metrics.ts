/** Prometheus metrics shared by every service; each service adds its own to the same registry. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const messagesConsumed = new Counter({
  name: 'ordersaga_messages_consumed_total',
  help: 'Kafka messages consumed, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const messagesProduced = new Counter({
  name: 'ordersaga_messages_produced_total',
  help: 'Kafka messages produced, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const transactionDuration = new Histogram({
  name: 'ordersaga_transaction_duration_seconds',
  help: 'Time to handle the batches of one transaction and commit it',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

/** What a retry is of: a transaction's commit, or a handler's side effect (e.g. a webhook). */
export const RETRIED_OPERATIONS = ['commit', 'effect'] as const;

export const retries = new Counter({
  name: 'ordersaga_retries_total',
  help: 'Retries of transient failures, by operation',
  labelNames: ['operation'] as const,
  registers: [registry],
});

/** Why a message went to a dead-letter topic. */
export const DEAD_LETTER_KINDS = ['poison', 'handler-error', 'effect-failed', 'expired'] as const;
export type DeadLetterKind = (typeof DEAD_LETTER_KINDS)[number];

export const deadLetters = new Counter({
  name: 'ordersaga_dead_letters_total',
  help: 'Messages sent to a dead-letter topic, by source topic and kind of reason',
  labelNames: ['topic', 'kind'] as const,
  registers: [registry],
});

export const holdsExpired = new Counter({
  name: 'ordersaga_holds_expired_total',
  help: 'Holds (reservations, authorizations) released because nothing made them final or released them in time',
  labelNames: ['hold'] as const,
  registers: [registry],
});

export const restoreRecordsRemaining = new Gauge({
  name: 'ordersaga_state_restore_remaining_offsets',
  help: 'Offsets of a state topic still to read before its partitions are restored (0 once restored)',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const restoredRecords = new Counter({
  name: 'ordersaga_state_restored_records_total',
  help: 'State rows read from a state topic (changelog) into the local store, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const rowsRetired = new Counter({
  name: 'ordersaga_state_rows_retired_total',
  help: 'State rows retired (tombstoned) after their retention, by state topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});

export const consumerLag = new Gauge({
  name: 'ordersaga_consumer_lag_messages',
  help: 'Messages between the last processed offset and the high watermark, per partition',
  labelNames: ['topic', 'partition'] as const,
  registers: [registry],
});

export const httpRequestDuration = new Histogram({
  name: 'ordersaga_http_request_duration_seconds',
  help: 'HTTP requests served, by method, route and status code',
  labelNames: ['method', 'route', 'status_code'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

/**
 * Creates at 0 the series a service counts for the topics it consumes. A counter whose series
 * first appears at 1 has no earlier sample for increase() and rate() to compare with: the first
 * dead letter would raise no alert and draw no line.
 */
export function initialiseSeries(consumedTopics: readonly string[]): void {
  for (const operation of RETRIED_OPERATIONS) retries.inc({ operation }, 0);
  for (const topic of consumedTopics) {
    messagesConsumed.inc({ topic }, 0);
    for (const kind of DEAD_LETTER_KINDS) deadLetters.inc({ topic, kind }, 0);
  }
}
