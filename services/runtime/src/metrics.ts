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

export const retries = new Counter({
  name: 'ordersaga_retries_total',
  help: 'Retries of transient failures, by operation',
  labelNames: ['operation'] as const,
  registers: [registry],
});

export const deadLetters = new Counter({
  name: 'ordersaga_dead_letters_total',
  help: 'Messages sent to a dead-letter topic, by source topic and kind of reason',
  labelNames: ['topic', 'kind'] as const,
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
